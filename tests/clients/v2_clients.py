"""Drives a running `tank api` with the real OpenStack clients (tests/tests/clients_v2.rs).

    python v2_clients.py <endpoint> <scenario> <workdir>

Each scenario uses the clients as a user would and asserts what the user relies on; a
failed assertion exits non-zero with the reason. The server authenticates with static
API tokens (`auth_strategy = "tokens"`, docs/authentication.md); `TANK_TOKENS` holds a
JSON object of the tokens `tank token new` made: "alice" and "bob" (members of their
own projects) and "ops" (an admin). glanceclient takes a token and an endpoint;
openstacksdk and the `openstack` CLI take keystoneauth's `admin_token` plugin (an
endpoint and a token, as with any Glance reached without a catalog).
"""

import hashlib
import json
import os
import subprocess
import sys

ENDPOINT, SCENARIO, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
TOKENS = json.loads(os.environ["TANK_TOKENS"])


def sdk(who="ops"):
    """An openstacksdk connection with `who`'s token. keystoneauth's admin_token plugin
    takes its endpoint as the API's own, so it names the version: `<server>/v2`."""
    import openstack

    return openstack.connect(auth_type="admin_token", auth={"endpoint": ENDPOINT + "/v2", "token": TOKENS[who]})


def cli_env(who="ops"):
    """The environment of the `openstack` CLI run with `who`'s token."""
    return dict(os.environ, OS_AUTH_TYPE="admin_token", OS_ENDPOINT=ENDPOINT + "/v2", OS_TOKEN=TOKENS[who])


def make_file(name, size, seed):
    path = os.path.join(WORK, name)
    block = hashlib.sha256(seed.encode()).digest() * 2048  # 64 KiB
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
    return path


def digests(path):
    md5, sha512 = hashlib.md5(), hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            sha512.update(chunk)
    return md5.hexdigest(), sha512.hexdigest()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def glance(who):
    from glanceclient import Client

    return Client("2", endpoint=ENDPOINT, token=TOKENS[who])


def scenario_glanceclient():
    from glanceclient import exc

    g = glance("alice")
    path = make_file("gc.img", 5 * 1024 * 1024 + 123, "gc")
    md5, sha512 = digests(path)
    img = g.images.create(name="gc-image", disk_format="qcow2", container_format="bare", min_ram=128, tags=["a"])
    expect(img["status"] == "queued", img)
    # glanceclient uploads with chunked transfer and no Content-Length.
    with open(path, "rb") as f:
        g.images.upload(img["id"], f)
    got = g.images.get(img["id"])
    expect(got["status"] == "active", got)
    expect(got["size"] == os.path.getsize(path), got)
    expect(got["checksum"] == md5, (got["checksum"], md5))
    expect(got["os_hash_algo"] == "sha512" and got["os_hash_value"] == sha512, got)
    # data() verifies os_hash_value itself while reading.
    data = b"".join(g.images.data(img["id"]))
    expect(hashlib.md5(data).hexdigest() == md5, "downloaded data differs")
    # Updates are JSON patches made from the schema's model.
    g.images.update(img["id"], name="renamed", os_distro="cirros", min_disk=2)
    got = g.images.get(img["id"])
    expect((got["name"], got["os_distro"], got["min_disk"]) == ("renamed", "cirros", 2), got)
    g.images.update(img["id"], remove_props=["os_distro"])
    expect("os_distro" not in g.images.get(img["id"]), "property removed")
    g.image_tags.update(img["id"], "gold")
    g.image_tags.delete(img["id"], "a")
    expect(g.images.get(img["id"])["tags"] == ["gold"], g.images.get(img["id"])["tags"])
    # Lists: filters and paging by marker (a server ignoring markers would loop forever).
    for n in range(5):
        g.images.create(name="page-%d" % n, disk_format="raw", container_format="bare", tags=["paged"])
    paged = list(g.images.list(filters={"tag": ["paged"]}, page_size=2))
    expect(sorted(i["name"] for i in paged) == ["page-%d" % n for n in range(5)], [i["name"] for i in paged])
    by_name = [i["name"] for i in g.images.list(filters={"tag": ["paged"]}, sort="name:desc")]
    expect(by_name == ["page-4", "page-3", "page-2", "page-1", "page-0"], by_name)
    expect([i["name"] for i in g.images.list(filters={"name": "renamed"})] == ["renamed"], "name filter")
    # Errors come back as the client's exceptions with the server's message.
    # A read-only attribute: the schema model or the server (403) refuses it.
    refused = None
    try:
        g.images.update(img["id"], status="queued")
    except exc.HTTPForbidden as e:
        refused = str(e)
    except Exception as e:  # warlock's schema check, before any request
        refused = repr(e)
    expect(refused is not None and ("read-only" in refused or "status" in refused), "status was changed: %r" % refused)
    # Members, seen from the member's side.
    g.images.update(img["id"], visibility="shared")
    bob = glance("bob")
    g.image_members.create(img["id"], "bob")
    expect([m["member_id"] for m in g.image_members.list(img["id"])] == ["bob"], "owner lists members")
    expect([i["id"] for i in bob.images.list()] == [], "pending: not in bob's list")
    pending = [i["id"] for i in bob.images.list(filters={"member_status": "pending", "visibility": "shared"})]
    expect(pending == [img["id"]], pending)
    bob.image_members.update(img["id"], "bob", "accepted")
    expect([i["id"] for i in bob.images.list()] == [img["id"]], "accepted: listed")
    expect(hashlib.md5(b"".join(bob.images.data(img["id"]))).hexdigest() == md5, "bob reads it")
    try:
        bob.images.update(img["id"], name="bob's now")
        expect(False, "a member changed the image")
    except exc.HTTPNotFound:
        pass
    bob.image_members.update(img["id"], "bob", "rejected")
    expect([i["id"] for i in bob.images.list()] == [], "rejected: gone from the list")
    g.image_members.delete(img["id"], "bob")
    try:
        bob.images.get(img["id"])
        expect(False, "bob still sees it")
    except exc.HTTPNotFound:
        pass
    # Deactivation and deletion.
    g.images.deactivate(img["id"])
    expect(g.images.get(img["id"])["status"] == "deactivated", "deactivated")
    g.images.reactivate(img["id"])
    g.images.delete(img["id"])
    try:
        g.images.get(img["id"])
        expect(False, "deleted image still shown")
    except exc.HTTPNotFound:
        pass


def scenario_openstacksdk():
    # Discovery: `GET /` and the v2 entry's link, as with real Glance.
    conn = sdk()
    path = make_file("sdk.img", 3 * 1024 * 1024 + 7, "sdk")
    md5, sha512 = digests(path)
    # create_image sends Content-Length and sets dotted owner_specified.* properties.
    img = conn.image.create_image(
        name="sdk-image", filename=path, disk_format="raw", container_format="bare", wait=True, validate_checksum=True
    )
    got = conn.image.get_image(img.id)
    expect(got.status == "active" and got.size == os.path.getsize(path), got)
    expect(got.checksum == md5 and got.hash_value == sha512, got)
    expect(got.properties.get("owner_specified.openstack.object") == "images/sdk-image", got.properties)
    out = os.path.join(WORK, "sdk.out")
    with open(out, "wb") as f:
        conn.image.download_image(got, output=f, stream=True)
    expect(digests(out) == (md5, sha512), "downloaded data differs")
    conn.image.update_image(got, name="sdk-renamed", min_ram=256, os_distro="debian")
    got = conn.image.get_image(img.id)
    expect((got.name, got.min_ram, got.os_distro) == ("sdk-renamed", 256, "debian"), got)
    for n in range(3):
        conn.image.create_image(name="sdk-page-%d" % n, disk_format="raw", container_format="bare", tags=["sdk"])
    names = sorted(i.name for i in conn.image.images(tag=["sdk"], limit=1))
    expect(names == ["sdk-page-0", "sdk-page-1", "sdk-page-2"], names)
    stores = [s.id for s in conn.image.stores()]
    expect("fs" in stores, stores)
    conn.image.deactivate_image(got)
    expect(conn.image.get_image(got).status == "deactivated", "deactivated")
    conn.image.reactivate_image(got)
    conn.image.delete_image(got)
    expect(conn.image.find_image(img.id) is None, "deleted")


def scenario_openstack_cli():
    env = cli_env()
    cli = os.path.join(os.path.dirname(sys.executable), "openstack")

    def run(*args):
        done = subprocess.run([cli, *args], env=env, capture_output=True, text=True)
        expect(done.returncode == 0, "openstack %s: %s" % (" ".join(args), done.stderr))
        return done.stdout

    path = make_file("cli.img", 2 * 1024 * 1024, "cli")
    md5, _ = digests(path)
    run("image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", path,
        "--property", "os_distro=cirros", "cli-image")
    expect("cli-image" in run("image", "list", "-f", "value", "-c", "Name"), "listed")
    shown = run("image", "show", "cli-image", "-f", "value", "-c", "status", "-c", "checksum")
    expect(shown.split() == [md5, "active"], shown)
    run("image", "set", "--name", "cli-renamed", "--tag", "t1", "--min-ram", "64", "cli-image")
    expect("t1" in run("image", "show", "cli-renamed", "-f", "value", "-c", "tags"), "tagged")
    out = os.path.join(WORK, "cli.out")
    run("image", "save", "--file", out, "cli-renamed")
    expect(digests(out)[0] == md5, "saved data differs")
    run("image", "delete", "cli-renamed")
    expect("cli-renamed" not in run("image", "list", "-f", "value", "-c", "Name"), "deleted")


def wait_for(get, want, what):
    import time

    for _ in range(300):
        status = get()
        if status == want:
            return
        time.sleep(0.1)
    raise AssertionError("%s: still %s, not %s" % (what, status, want))


def scenario_import():
    # The file to import is served by nginx; its URL comes in the environment.
    uri, md5 = os.environ["TANK_IMPORT_URI"], os.environ["TANK_IMPORT_MD5"]
    g = glance("alice")
    info = g.images.get_import_info()
    expect("web-download" in info["import-methods"]["value"], info)
    img = g.images.create(name="gc-web", disk_format="raw", container_format="bare")
    g.images.image_import(img["id"], method="web-download", uri=uri)
    wait_for(lambda: g.images.get(img["id"])["status"], "active", "glanceclient web-download")
    expect(g.images.get(img["id"])["checksum"] == md5, g.images.get(img["id"]))
    expect(hashlib.md5(b"".join(g.images.data(img["id"]))).hexdigest() == md5, "imported data differs")
    g.images.delete(img["id"])
    # openstacksdk's import_image, the same way.
    conn = sdk()
    sdk_img = conn.image.create_image(name="sdk-web", disk_format="raw", container_format="bare")
    conn.image.import_image(sdk_img, method="web-download", uri=uri)
    wait_for(lambda: conn.image.get_image(sdk_img.id).status, "active", "openstacksdk web-download")
    expect(conn.image.get_image(sdk_img.id).checksum == md5, "sdk import checksum")
    conn.image.delete_image(sdk_img)
    # glance-direct: glanceclient stages then imports; openstacksdk and the openstack CLI
    # do both steps for `use_import` / `--import`.
    path = make_file("staged.img", 1024 * 1024 + 11, "staged")
    staged_md5, _ = digests(path)
    img = g.images.create(name="gc-staged", disk_format="raw", container_format="bare")
    with open(path, "rb") as f:
        g.images.stage(img["id"], f)
    expect(g.images.get(img["id"])["status"] == "uploading", "staged")
    g.images.image_import(img["id"], method="glance-direct")
    wait_for(lambda: g.images.get(img["id"])["status"], "active", "glanceclient glance-direct")
    expect(g.images.get(img["id"])["checksum"] == staged_md5, "glance-direct checksum")
    g.images.delete(img["id"])
    sdk_img = conn.image.create_image(
        name="sdk-staged", filename=path, disk_format="raw", container_format="bare", use_import=True, wait=True
    )
    wait_for(lambda: conn.image.get_image(sdk_img.id).status, "active", "openstacksdk use_import")
    expect(conn.image.get_image(sdk_img.id).checksum == staged_md5, "use_import checksum")
    conn.image.delete_image(sdk_img)
    env = cli_env()
    cli = os.path.join(os.path.dirname(sys.executable), "openstack")
    done = subprocess.run(
        [cli, "image", "create", "--import", "--disk-format", "raw", "--container-format", "bare", "--file", path,
         "-f", "value", "-c", "id", "cli-staged"], env=env, capture_output=True, text=True)
    expect(done.returncode == 0, "openstack image create --import: " + done.stderr)
    cli_id = done.stdout.strip()
    # The CLI ran with the admin's token, as conn does.
    wait_for(lambda: conn.image.get_image(cli_id).status, "active", "openstack image create --import")
    expect(conn.image.get_image(cli_id).checksum == staged_md5, "--import checksum")
    conn.image.delete_image(cli_id)
    # copy-image into the second store: an admin's (Glance's default policy), and the
    # image serves on meanwhile. glanceclient sends all_stores_must_succeed false.
    from glanceclient import exc

    expect("fast" in [s["id"] for s in g.images.get_stores_info()["stores"]], "the fast store is listed")
    img = g.images.create(name="gc-copy", disk_format="raw", container_format="bare")
    with open(path, "rb") as f:
        g.images.upload(img["id"], f)
    try:
        g.images.image_import(img["id"], method="copy-image", stores=["fast"])
        raise AssertionError("a member copied an image into another store")
    except exc.HTTPForbidden:
        pass
    admin = glance("ops")
    admin.images.image_import(img["id"], method="copy-image", stores=["fast"])
    wait_for(lambda: admin.images.get(img["id"]).get("stores"), "fs,fast", "glanceclient copy-image")
    expect(g.images.get(img["id"]).get("os_glance_failed_import") is None, "nothing failed")
    try:
        admin.images.image_import(img["id"], method="copy-image", stores=["fast"])
        raise AssertionError("copied into a store that holds the image")
    except exc.HTTPConflict:
        pass
    g.images.delete(img["id"])
    # openstacksdk, into every store that lacks the image.
    sdk_img = conn.image.create_image(name="sdk-copy", filename=path, disk_format="raw", container_format="bare")
    conn.image.import_image(sdk_img, method="copy-image", all_stores=True, all_stores_must_succeed=True)
    # openstacksdk's Image has no `stores` attribute: read the raw document (the proxy is
    # a keystoneauth adapter).
    stores = lambda: conn.image.get("/images/" + sdk_img.id).json().get("stores")  # noqa: E731
    wait_for(stores, "fs,fast", "openstacksdk copy-image")
    # Only the copy remains to read from.
    expect(conn.image.delete("/stores/fs/" + sdk_img.id).status_code == 204, "removed from fs")
    expect(stores() == "fast", "only the copy is left")
    got = hashlib.md5()
    for chunk in conn.image.download_image(sdk_img, stream=True).iter_content(1 << 20):
        got.update(chunk)
    expect(got.hexdigest() == staged_md5, "the copy reads back")
    conn.image.delete_image(sdk_img)


SCENARIOS = {
    "import": scenario_import,
    "glanceclient": scenario_glanceclient,
    "openstacksdk": scenario_openstacksdk,
    "openstack-cli": scenario_openstack_cli,
}

if __name__ == "__main__":
    SCENARIOS[SCENARIO]()
    print("ok: " + SCENARIO)
