//! A sled registry written before the images service (record schema 1, in
//! tests/fixtures/sled-v1, never edited) opens with today's code and reads back as it did:
//! the v1 views and memberships are what the old code answered, members still see what
//! was shared with them, and the migrated records take changes.

use std::{collections::BTreeMap, path::Path};

use serde_json::{json, Value};
use tank_tests::{repo, Deployment};

/// The image the old code's start killed; ours kills it again, at another time.
const INTERRUPTED: &str = "7d2d7e1a-0c5b-4d7e-9f7c-3b1e2a4c5d6e";
/// The private image with two members.
const SHARED: &str = "83f418d6-2215-4322-b94c-ec6970b630b1";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn fixture(name: &str) -> Value {
    let path = repo().join("tests/fixtures/sled-v1").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn tenant(t: &str) -> [(&'static str, &str); 3] {
    [("x-auth-token", "t"), ("x-identity-status", "Confirmed"), ("x-tenant", t)]
}

#[test]
fn a_registry_written_before_the_images_service_reads_back_as_it_did() {
    let d = Deployment::new();
    copy_dir(&repo().join("tests/fixtures/sled-v1/registry"), &d.root.path().join("var/registry"));
    d.behind_proxy("");
    let s = d.start();

    let detail = "/v1/images/detail?changes-since=2000-01-01T00:00:00&is_public=none&sort_key=name&sort_dir=asc";
    let mut got = s.get(detail).json();
    let mut want = fixture("v1-detail.json");
    for list in [&mut got, &mut want] {
        for image in list["images"].as_array_mut().unwrap() {
            if image["id"] == INTERRUPTED {
                image["updated_at"] = json!("(when the start ended the upload)");
            }
        }
    }
    assert_eq!(got, want, "every image, in the old code's v1 view");
    assert!(s.log().contains(INTERRUPTED), "the interrupted upload is ended at start: {}", s.log());

    let members: BTreeMap<String, Value> = serde_json::from_value(fixture("v1-members.json")).unwrap();
    assert_eq!(members.len(), 6);
    for (id, want) in &members {
        let got = s.get(&format!("/v1/images/{id}/members"));
        assert_eq!(got.status, 200, "{id}");
        assert_eq!(&got.json()["members"], want, "members of {id}");
    }

    // The members of the private image still see it, in their lists too; others do not.
    for member in ["friend", "guest"] {
        assert_eq!(s.send("HEAD", &format!("/v1/images/{SHARED}"), &tenant(member), "").status, 200, "{member}");
        let list = s.send("GET", "/v1/images", &tenant(member), "").json();
        let ids: Vec<_> = list["images"].as_array().unwrap().iter().map(|i| i["id"].clone()).collect();
        assert!(ids.contains(&json!(SHARED)), "{member} lists it: {list}");
    }
    assert_eq!(s.send("HEAD", &format!("/v1/images/{SHARED}"), &tenant("stranger"), "").status, 404);
    // friend may share it on (can_share), guest may not.
    assert_eq!(s.send("PUT", &format!("/v1/images/{SHARED}/members/third"), &tenant("friend"), "").status, 204);
    assert_eq!(s.send("PUT", &format!("/v1/images/{SHARED}/members/fourth"), &tenant("guest"), "").status, 404);

    // A migrated record takes changes and keeps them over a restart.
    let reserved = want["images"].as_array().unwrap().iter().find(|i| i["name"] == "reserved").unwrap().clone();
    let id = reserved["id"].as_str().unwrap();
    let update = s.send("PUT", &format!("/v1/images/{id}"), &[("x-image-meta-property-after", "yes")], "");
    assert_eq!(update.status, 200, "{:?}", update.body);
    drop(s);
    let s = d.start();
    let head = s.head(&format!("/v1/images/{id}"));
    assert_eq!(head.header("x-image-meta-property-after"), Some("yes"));
    assert_eq!(head.header("x-image-meta-size"), reserved["size"].to_string().as_str().into());
    assert_eq!(s.image_status(INTERRUPTED), "killed");
}
