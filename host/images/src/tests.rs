//! The service over memory: a registry and a store in a mutex, and a policy that records
//! every decision. What is checked here without a server: one policy decision per action
//! for every operation, the 404 rule for hidden images, and the upload life cycle's
//! merges, leases and cleanups.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use tank_core::{
    query::ListQuery, Caller, Change, ContainerFormat, DiskFormat, Image, ImageId, ImageLocation, Location,
    MemberStatus, Status, Timestamp, Upload, Visibility,
};
use tank_sdk::{Error, ErrorKind, Revision, Revisioned};

use crate::{
    backend::{Reader, Registry, Store, StoreEntry, Stores, Writer},
    policy::{DefaultPolicy, Policy, Refusal, Target},
    Action, ByteStream, Data, ImageError, Images, NewImage, Settings, Source,
};

#[derive(Default)]
struct MemRegistry {
    records: Mutex<BTreeMap<ImageId, (Revision, Image)>>,
    /// Makes `list` ignore every filter, as a driver built before them would.
    ignores_filters: bool,
    /// The next update to this status is stored but answers an error, as a remote
    /// registry whose answer was lost.
    lands_then_fails: Mutex<Option<Status>>,
    /// What `with_status` answers instead of the records: a snapshot taken earlier.
    stale_with_status: Mutex<Option<Vec<Image>>>,
}

impl Registry for MemRegistry {
    fn name(&self) -> &str {
        "mem"
    }
    fn create(&self, image: &Image) -> tank_sdk::Result<Revision> {
        let mut r = self.records.lock().unwrap();
        if r.contains_key(&image.id) {
            return Err(Error::duplicate("exists"));
        }
        r.insert(image.id, (1, image.clone()));
        Ok(1)
    }
    fn get(&self, id: ImageId) -> tank_sdk::Result<Revisioned<Image>> {
        let r = self.records.lock().unwrap();
        let (revision, value) = r.get(&id).cloned().ok_or_else(|| Error::not_found("no such image"))?;
        Ok(Revisioned { revision, value })
    }
    fn update(&self, image: &Image, revision: Revision) -> tank_sdk::Result<Revision> {
        let mut r = self.records.lock().unwrap();
        let (current, stored) = r.get_mut(&image.id).ok_or_else(|| Error::not_found("no such image"))?;
        if *current != revision {
            return Err(Error::new(ErrorKind::CONFLICT, "stale"));
        }
        *current += 1;
        *stored = image.clone();
        let mut lands = self.lands_then_fails.lock().unwrap();
        if lands.as_ref() == Some(&image.status) {
            *lands = None;
            return Err(Error::new(ErrorKind::UNAVAILABLE, "the registry's answer was lost"));
        }
        Ok(*current)
    }
    fn remove(&self, id: ImageId) -> tank_sdk::Result<()> {
        self.records.lock().unwrap().remove(&id).map(drop).ok_or_else(|| Error::not_found("no such image"))
    }
    fn list(&self, query: &ListQuery) -> tank_sdk::Result<Vec<Image>> {
        let r = self.records.lock().unwrap();
        let marker = query.marker.and_then(|m| r.get(&m).map(|(_, i)| i.clone()));
        let all = r.values().map(|(_, i)| i.clone());
        if self.ignores_filters {
            let q = ListQuery { filters: Default::default(), ..query.clone() };
            return Ok(q.page(all, marker.as_ref()));
        }
        Ok(query.page(all, marker.as_ref()))
    }
    fn with_status(&self, statuses: &[Status]) -> tank_sdk::Result<Vec<Image>> {
        if let Some(snapshot) = self.stale_with_status.lock().unwrap().clone() {
            return Ok(snapshot);
        }
        let r = self.records.lock().unwrap();
        Ok(r.values().filter(|(_, i)| statuses.contains(&i.status)).map(|(_, i)| i.clone()).collect())
    }
    fn usage(&self, owner: &str) -> tank_sdk::Result<u64> {
        let r = self.records.lock().unwrap();
        Ok(r.values().filter(|(_, i)| i.owner.as_deref() == Some(owner)).map(|(_, i)| i.stored_bytes()).sum())
    }
}

#[derive(Default)]
struct MemStore {
    data: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    partial: Arc<Mutex<HashMap<ImageId, Vec<u8>>>>,
    /// How long `finish` takes (an fsync, a multipart completion).
    finish_takes: Mutex<Duration>,
    /// Whether writes are refused, as by a store that is down.
    down: Mutex<bool>,
}

struct MemWriter {
    id: ImageId,
    data: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    partial: Arc<Mutex<HashMap<ImageId, Vec<u8>>>>,
    finish_takes: Duration,
}

impl Writer for MemWriter {
    fn write(&mut self, data: &[u8]) -> tank_sdk::Result<()> {
        let mut p = self.partial.lock().unwrap();
        p.get_mut(&self.id).ok_or_else(|| Error::not_found("the partial data is gone"))?.extend_from_slice(data);
        Ok(())
    }
    fn finish(self: Box<Self>) -> tank_sdk::Result<String> {
        std::thread::sleep(self.finish_takes);
        let bytes = self.partial.lock().unwrap().remove(&self.id).ok_or_else(|| Error::not_found("gone"))?;
        let location = format!("mem://{}", self.id);
        self.data.lock().unwrap().insert(location.clone(), bytes);
        Ok(location)
    }
    fn abort(self: Box<Self>) -> tank_sdk::Result<()> {
        self.partial.lock().unwrap().remove(&self.id);
        Ok(())
    }
}

struct MemReader(std::io::Cursor<Vec<u8>>);

impl Reader for MemReader {
    fn read(&mut self, buf: &mut [u8]) -> tank_sdk::Result<usize> {
        Ok(std::io::Read::read(&mut self.0, buf).unwrap())
    }
}

impl Store for MemStore {
    fn name(&self) -> &str {
        "mem"
    }
    fn add(&self, id: ImageId, _: Option<u64>) -> tank_sdk::Result<Box<dyn Writer>> {
        if *self.down.lock().unwrap() {
            return Err(Error::new(ErrorKind::UNAVAILABLE, "the store is down"));
        }
        self.partial.lock().unwrap().insert(id, Vec::new());
        let finish_takes = *self.finish_takes.lock().unwrap();
        Ok(Box::new(MemWriter { id, data: self.data.clone(), partial: self.partial.clone(), finish_takes }))
    }
    fn get(&self, location: &str, offset: u64, length: Option<u64>) -> tank_sdk::Result<Box<dyn Reader>> {
        let d = self.data.lock().unwrap();
        let all = d.get(location).ok_or_else(|| Error::not_found("no data at /srv/secret/place"))?;
        let start = (offset as usize).min(all.len());
        let end = length.map_or(all.len(), |l| (start + l as usize).min(all.len()));
        Ok(Box::new(MemReader(std::io::Cursor::new(all[start..end].to_vec()))))
    }
    fn size(&self, location: &str) -> tank_sdk::Result<u64> {
        Ok(self.data.lock().unwrap().get(location).map_or(0, |d| d.len() as u64))
    }
    fn delete(&self, location: &str) -> tank_sdk::Result<()> {
        self.data.lock().unwrap().remove(location).map(drop).ok_or_else(|| Error::not_found("gone"))
    }
    fn discard(&self, id: ImageId) -> tank_sdk::Result<()> {
        self.partial.lock().unwrap().remove(&id);
        Ok(())
    }
}

/// The default policy, recording every question.
#[derive(Default)]
struct Recording {
    asked: Mutex<Vec<Action>>,
}

impl Policy for Recording {
    fn check(&self, caller: &Caller, action: Action, target: Target<'_>) -> Result<(), Refusal> {
        self.asked.lock().unwrap().push(action);
        DefaultPolicy.check(caller, action, target)
    }
}

impl Recording {
    fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

struct World {
    images: Images,
    registry: Arc<MemRegistry>,
    store: Arc<MemStore>,
    policy: Arc<Recording>,
}

fn world_with(settings: Settings, registry: MemRegistry) -> World {
    let registry = Arc::new(registry);
    let store = Arc::new(MemStore::default());
    let policy = Arc::new(Recording::default());
    let images = Images::builder(registry.clone(), mem_stores(&store), settings).policy(policy.clone()).build();
    World { images, registry, store, policy }
}

fn mem_stores(store: &Arc<MemStore>) -> Stores {
    let entry =
        StoreEntry { store: store.clone(), names: vec!["mem".into()], schemes: vec!["mem".into()], external: false };
    Stores::new(vec![entry], "mem").unwrap()
}

impl World {
    /// Another server on the same registry and store, named `node`.
    fn other_server(&self, node: &str) -> Images {
        let settings = Settings { node_id: node.into(), ..self.images.settings().clone() };
        Images::new(self.registry.clone(), mem_stores(&self.store), settings)
    }
}

/// A server with several mem stores (the first the default), and `staging` for staged
/// data, each its own.
struct Multi {
    images: Images,
    registry: Arc<MemRegistry>,
    stores: Vec<(String, Arc<MemStore>)>,
}

fn multi(names: &[&str]) -> Multi {
    let registry = Arc::new(MemRegistry::default());
    let all: Vec<&str> = names.iter().copied().chain(["staging"]).collect();
    let stores: Vec<(String, Arc<MemStore>)> = all.iter().map(|n| (n.to_string(), Arc::default())).collect();
    let entries = stores
        .iter()
        .map(|(n, s)| StoreEntry {
            store: s.clone(),
            names: vec![n.clone()],
            schemes: vec!["mem".into()],
            external: false,
        })
        .collect();
    let settings = Settings { staging_store: Some("staging".into()), ..Settings::default() };
    let images = Images::new(registry.clone(), Stores::new(entries, names[0]).unwrap(), settings);
    Multi { images, registry, stores }
}

impl Multi {
    fn store(&self, name: &str) -> &MemStore {
        &self.stores.iter().find(|(n, _)| n == name).unwrap().1
    }
    /// The images' data store `name` holds.
    fn data_in(&self, name: &str) -> Vec<Vec<u8>> {
        self.store(name).data.lock().unwrap().values().cloned().collect()
    }
    /// Whether any partial data is left in any store.
    fn partial_left(&self) -> bool {
        self.stores.iter().any(|(_, s)| !s.partial.lock().unwrap().is_empty())
    }
    fn held_by(&self, name: &str) -> usize {
        self.store(name).data.lock().unwrap().len()
    }
    async fn settled(&self, id: ImageId) -> Image {
        for _ in 0..2_000 {
            let image = self.images.record(id).await.unwrap().value;
            if image.upload.is_none() && image.status != Status::Importing {
                return image;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the job on image {id} did not end");
    }
}

fn stores_of(image: &Image) -> Vec<&str> {
    image.locations.iter().filter(|l| !l.is_staged()).filter_map(|l| l.store.as_deref()).collect()
}

fn into(stores: &[&str], must_succeed: bool) -> crate::ImportTo {
    crate::ImportTo { stores: stores.iter().map(|s| s.to_string()).collect(), all_stores: false, must_succeed }
}

fn world() -> World {
    world_with(Settings::default(), MemRegistry::default())
}

fn tenant(t: &str) -> Caller {
    Caller::new(Some(format!("{t}-user")), Some(t.into()), vec!["member".into()], true)
}

/// A stream fed by the test, a piece at a time.
fn channel() -> (tokio::sync::mpsc::Sender<std::io::Result<Bytes>>, ByteStream) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let stream = futures_stream(move |cx| rx.poll_recv(cx));
    (tx, stream)
}

fn futures_stream(
    f: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<std::io::Result<Bytes>>> + Send + Unpin + 'static,
) -> ByteStream {
    struct S<F>(F);
    impl<F: FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Option<std::io::Result<Bytes>>> + Unpin>
        futures_core::Stream for S<F>
    {
        type Item = std::io::Result<Bytes>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            (self.0)(cx)
        }
    }
    Box::pin(S(f))
}

fn bytes(data: &[u8]) -> Data {
    let owned = Bytes::copy_from_slice(data);
    let mut once = Some(owned);
    let body = futures_stream(move |_| std::task::Poll::Ready(once.take().map(Ok)));
    Data { source: Source::Stream { body, length: Some(data.len() as u64) }, store: None }
}

fn md5(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Waits (with the test's clock) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..2_000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_asks_the_policy_once_for_each_of_its_actions() {
    use Action::*;
    let w = world();
    let owner = tenant("acme");
    let p = &w.policy;
    let image = w.images.create(&owner, formatted(), None).await.unwrap();
    assert_eq!(p.take(), [AddImage]);
    let id = image.id;
    w.images.get(&owner, id).await.unwrap();
    assert_eq!(p.take(), [GetImage]);
    w.images.list(&owner, ListQuery::new(owner.viewer())).await.unwrap();
    assert_eq!(p.take(), [GetImages]);
    w.images.update_metadata(&owner, id, vec![Change::Name(Some("n".into()))], None).await.unwrap();
    assert_eq!(p.take(), [GetImage, ModifyImage]);
    w.images.update_metadata(&owner, id, vec![Change::Visibility(Visibility::Public)], None).await.unwrap();
    assert_eq!(p.take(), [GetImage, ModifyImage, PublicizeImage]);
    w.images.update_metadata(&owner, id, vec![Change::Visibility(Visibility::Community)], None).await.unwrap();
    assert_eq!(p.take(), [GetImage, ModifyImage, CommunitizeImage]);
    w.images.update_metadata(&owner, id, vec![Change::Visibility(Visibility::Shared)], None).await.unwrap();
    p.take();
    w.images.add_tag(&owner, id, "t").await.unwrap();
    assert_eq!(p.take(), [GetImage, AddTag]);
    w.images.remove_tag(&owner, id, "t").await.unwrap();
    assert_eq!(p.take(), [GetImage, DeleteTag]);
    w.images.add_member(&owner, id, "friend", None).await.unwrap();
    assert_eq!(p.take(), [GetImage, AddMember]);
    w.images.members(&owner, id).await.unwrap();
    assert_eq!(p.take(), [GetImage, GetMembers]);
    w.images.member(&owner, id, "friend").await.unwrap();
    assert_eq!(p.take(), [GetImage, GetMember]);
    w.images.set_member_status(&tenant("friend"), id, "friend", MemberStatus::Accepted).await.unwrap();
    assert_eq!(p.take(), [GetImage, ModifyMember]);
    w.images.replace_members(&owner, id, vec![("friend".into(), Some(true))]).await.unwrap();
    assert_eq!(p.take(), [GetImage, AddMember, DeleteMember]);
    w.images.remove_member(&owner, id, "friend").await.unwrap();
    assert_eq!(p.take(), [GetImage, DeleteMember]);
    w.images.offer(&owner, id, "guest").await.unwrap();
    assert_eq!(p.take(), [GetImage, AddMember]);
    w.images.memberships(&tenant("guest"), id).await.unwrap();
    assert_eq!(p.take(), [GetImage, GetMembers]);
    w.images.remove_member(&owner, id, "guest").await.unwrap();
    p.take();
    w.images.shared_with(&owner, "friend").await.unwrap();
    assert_eq!(p.take(), [GetImages]);
    w.images.upload(&owner, id, bytes(b"data"), None).await.unwrap();
    assert_eq!(p.take(), [GetImage, UploadImage]);
    w.images.download(&owner, id, None).await.unwrap();
    assert_eq!(p.take(), [GetImage, DownloadImage]);
    w.images.deactivate(&owner, id).await.unwrap();
    assert_eq!(p.take(), [GetImage, Deactivate]);
    w.images.reactivate(&owner, id).await.unwrap();
    assert_eq!(p.take(), [GetImage, Reactivate]);
    w.images.delete(&owner, id).await.unwrap();
    assert_eq!(p.take(), [GetImage, DeleteImage]);
    // Creates with data ask for how the data comes, on the image being created.
    w.images.create(&owner, NewImage::default(), Some(bytes(b"x"))).await.unwrap();
    assert_eq!(p.take(), [AddImage, UploadImage]);
    let new = NewImage { changes: vec![Change::Visibility(Visibility::Public)], ..Default::default() };
    w.images.create(&owner, new, None).await.unwrap();
    assert_eq!(p.take(), [AddImage, PublicizeImage]);
    let record = w.images.create_record(&Caller::admin(), None, Status::Queued, vec![]).await.unwrap();
    assert_eq!(p.take(), [AddImage]);
    w.images.update_record(&Caller::admin(), record.value.id, vec![Change::MinRam(1)], None).await.unwrap();
    assert_eq!(p.take(), [GetImage, ModifyImage]);
    w.images.delete_record(&Caller::admin(), record.value.id, None).await.unwrap();
    assert_eq!(p.take(), [GetImage, DeleteImage]);
}

/// A policy that forbids everything, and says so as "forbidden".
struct Nothing;

impl Policy for Nothing {
    fn check(&self, _: &Caller, _: Action, _: Target<'_>) -> Result<(), Refusal> {
        Err(Refusal::Forbidden)
    }
}

#[tokio::test]
async fn an_image_the_caller_may_not_see_is_not_found_whatever_the_policy_says() {
    let w = world();
    let image = w.images.create(&tenant("acme"), NewImage::default(), None).await.unwrap();
    let strict =
        Images::builder(w.registry.clone(), Stores::none(), Settings::default()).policy(Arc::new(Nothing)).build();
    let e = strict.get(&tenant("acme"), image.id).await.unwrap_err();
    assert_eq!(e, ImageError::NotFound(image.id), "a refused get_image is not found, never forbidden");
    let e = strict.delete(&tenant("acme"), image.id).await.unwrap_err();
    assert_eq!(e, ImageError::NotFound(image.id));
    let e = strict.list(&tenant("acme"), ListQuery::new(Default::default())).await.unwrap_err();
    assert_eq!(e, ImageError::Forbidden { image: None, action: Action::GetImages });
    // With the default policy: a stranger changing a public image is told no, a member
    // changing a shared one learns nothing.
    let owner = tenant("acme");
    w.images.add_member(&owner, image.id, "guest", None).await.unwrap();
    let e = w.images.update_metadata(&tenant("guest"), image.id, vec![Change::MinRam(1)], None).await.unwrap_err();
    assert_eq!(e, ImageError::NotFound(image.id));
    w.images.update_metadata(&owner, image.id, vec![Change::Visibility(Visibility::Public)], None).await.unwrap();
    let e = w.images.update_metadata(&tenant("other"), image.id, vec![Change::MinRam(1)], None).await.unwrap_err();
    assert_eq!(e, ImageError::Forbidden { image: Some(image.id), action: Action::ModifyImage });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_made_while_an_upload_runs_are_kept_and_the_upload_succeeds() {
    let w = world();
    let owner = tenant("acme");
    let image = w.images.create(&owner, formatted(), None).await.unwrap();
    let (tx, body) = channel();
    let images = w.images.clone();
    let (who, id) = (owner.clone(), image.id);
    let upload = tokio::spawn(async move {
        let data = Data { source: Source::Stream { body, length: None }, store: None };
        images.upload(&who, id, data, None).await
    });
    tx.send(Ok(Bytes::from_static(b"first half, "))).await.unwrap();
    until("the upload to be saving", || w.store.partial.lock().unwrap().contains_key(&id)).await;
    w.images.update_metadata(&owner, id, vec![Change::SetProperty("k".into(), "v".into())], None).await.unwrap();
    w.images.add_member(&owner, id, "friend", Some(true)).await.unwrap();
    w.images.add_tag(&owner, id, "gold").await.unwrap();
    tx.send(Ok(Bytes::from_static(b"second half"))).await.unwrap();
    drop(tx);
    let done = upload.await.unwrap().unwrap();
    assert_eq!(done.status, Status::Active);
    assert_eq!(done.checksum.as_deref(), Some(md5(b"first half, second half").as_str()));
    assert_eq!(done.os_hash_algo.as_deref(), Some("sha512"));
    assert_eq!(done.os_hash_value.as_ref().map(String::len), Some(128));
    let stored = w.images.get(&owner, id).await.unwrap().value;
    assert_eq!(stored.properties["k"], "v");
    assert_eq!(stored.members[0].member_id, "friend");
    assert!(stored.tags.contains("gold"));
    assert!(stored.upload.is_none() && stored.locations.len() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_stops_the_upload_and_nothing_is_left() {
    let w = world();
    let owner = tenant("acme");
    let image = w.images.create(&owner, formatted(), None).await.unwrap();
    let (tx, body) = channel();
    let (images, who, id) = (w.images.clone(), owner.clone(), image.id);
    let upload = tokio::spawn(async move {
        images.upload(&who, id, Data { source: Source::Stream { body, length: None }, store: None }, None).await
    });
    tx.send(Ok(Bytes::from_static(b"some bytes"))).await.unwrap();
    until("the upload to be saving", || w.store.partial.lock().unwrap().contains_key(&id)).await;
    w.images.delete(&owner, id).await.unwrap();
    assert_eq!(upload.await.unwrap().unwrap_err(), ImageError::DeletedDuringUpload(id));
    assert!(w.store.partial.lock().unwrap().is_empty() && w.store.data.lock().unwrap().is_empty());
    let record = w.images.record(id).await.unwrap().value;
    assert_eq!((record.status, record.upload), (Status::Deleted, None));
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_ends_this_servers_uploads_at_start_and_others_only_when_their_lease_passed() {
    let w = world();
    let lease = |node: &str, micros: i64| Upload {
        node: node.into(),
        token: node.into(),
        store: "mem".into(),
        lease_until: Timestamp::from_unix_micros(micros),
    };
    let far = super::later(super::now(), Duration::from_secs(3600)).unix_micros();
    let mut ids = Vec::new();
    for upload in [lease("tank", far), lease("other", far), lease("other", 1)] {
        let mut image = Image::new(ImageId::random(), super::now());
        image.status = Status::Saving;
        image.upload = Some(upload);
        w.registry.create(&image).unwrap();
        w.store.partial.lock().unwrap().insert(image.id, b"partial".to_vec());
        ids.push(image.id);
    }
    assert_eq!(w.images.recover(false).await.unwrap(), 1, "later: only the expired lease");
    assert_eq!(w.images.record(ids[2]).await.unwrap().value.status, Status::Killed);
    assert_eq!(w.images.recover(true).await.unwrap(), 1, "at start: this server's own too");
    let statuses: Vec<Status> =
        futures_collect(ids.iter().map(|id| w.registry.get(*id).unwrap().value.status)).into_iter().collect();
    assert_eq!(
        statuses,
        [Status::Killed, Status::Saving, Status::Killed],
        "another server's live upload is left alone"
    );
    let partial = w.store.partial.lock().unwrap();
    assert!(partial.contains_key(&ids[1]) && partial.len() == 1, "only the live upload's data remains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_decides_on_the_record_as_it_is_not_as_it_was_listed() {
    let w = world();
    let mut image = Image::new(ImageId::random(), super::now());
    image.status = Status::Saving;
    let lease_until = super::later(super::now(), Duration::from_secs(3600));
    image.upload = Some(Upload { node: "other".into(), token: "live".into(), store: "mem".into(), lease_until });
    w.registry.create(&image).unwrap();
    w.store.partial.lock().unwrap().insert(image.id, b"partial".to_vec());
    // Listed while its lease had passed; renewed by its server since.
    let mut listed = image.clone();
    listed.upload.as_mut().unwrap().lease_until = Timestamp::from_unix_micros(1);
    *w.registry.stale_with_status.lock().unwrap() = Some(vec![listed]);
    assert_eq!(w.images.recover(false).await.unwrap(), 0);
    let record = w.registry.get(image.id).unwrap().value;
    assert_eq!((record.status, record.upload.unwrap().token), (Status::Saving, "live".to_owned()));
    assert!(w.store.partial.lock().unwrap().contains_key(&image.id), "the live upload's data is untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_landed_although_its_write_failed_keeps_the_image_and_its_data() {
    let w = world();
    *w.registry.lands_then_fails.lock().unwrap() = Some(Status::Active);
    let owner = tenant("acme");
    let image = w.images.create(&owner, NewImage::default(), Some(bytes(b"kept"))).await.unwrap();
    assert_eq!((image.status, image.checksum.as_deref()), (Status::Active, Some(md5(b"kept").as_str())));
    let record = w.registry.get(image.id).unwrap().value;
    assert_eq!(record.status, Status::Active);
    let location = record.location().unwrap().url.expose().to_owned();
    assert_eq!(w.store.data.lock().unwrap().get(&location).map(Vec::as_slice), Some(&b"kept"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_queued_image_as_its_upload_starts_leaves_no_deleted_record_with_a_lease() {
    let w = world();
    let owner = tenant("acme");
    for _ in 0..20 {
        let image = w.images.create(&owner, formatted(), None).await.unwrap();
        let (images, who, id) = (w.images.clone(), owner.clone(), image.id);
        let upload = tokio::spawn(async move { images.upload(&who, id, bytes(b"racing"), None).await });
        let deleted = w.images.delete(&owner, id).await;
        let uploaded = upload.await.unwrap();
        let record = w.registry.get(id).unwrap().value;
        assert!(record.upload.is_none(), "{:?} {deleted:?} {uploaded:?}", record.status);
        match record.status {
            Status::Deleted => {}
            Status::Active => assert!(deleted.is_err() || uploaded.is_ok()),
            other => panic!("{other} after {deleted:?} and {uploaded:?}"),
        }
    }
    assert!(w.store.partial.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_until_the_commit_even_when_finishing_takes_longer_than_it() {
    let settings = Settings { upload_lease: Duration::from_millis(300), ..Settings::default() };
    let w = world_with(settings, MemRegistry::default());
    *w.store.finish_takes.lock().unwrap() = Duration::from_millis(1500);
    let other = w.other_server("other");
    let owner = tenant("acme");
    let image = w.images.create(&owner, formatted(), None).await.unwrap();
    let (images, who, id) = (w.images.clone(), owner.clone(), image.id);
    let upload = tokio::spawn(async move { images.upload(&who, id, bytes(b"slow to finish"), None).await });
    // The other server looks for dead uploads all along, as its reclaim loop would.
    while !upload.is_finished() {
        assert_eq!(other.recover(false).await.unwrap(), 0, "a live upload was ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = upload.await.unwrap().unwrap();
    assert_eq!((done.status, done.checksum), (Status::Active, Some(md5(b"slow to finish"))));
}

fn futures_collect<T>(it: impl Iterator<Item = T>) -> Vec<T> {
    it.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_lease_stops_the_upload_and_keeps_nothing() {
    let settings = Settings { upload_lease: Duration::from_millis(300), ..Settings::default() };
    let w = world_with(settings, MemRegistry::default());
    let owner = tenant("acme");
    let image = w.images.create(&owner, formatted(), None).await.unwrap();
    let (tx, body) = channel();
    let (images, who, id) = (w.images.clone(), owner.clone(), image.id);
    let upload = tokio::spawn(async move {
        images.upload(&who, id, Data { source: Source::Stream { body, length: None }, store: None }, None).await
    });
    tx.send(Ok(Bytes::from_static(b"bytes"))).await.unwrap();
    until("the upload to be saving", || w.store.partial.lock().unwrap().contains_key(&id)).await;
    // Another server takes the upload over (as after the lease passed): the renewal sees it.
    let mut record = w.registry.get(id).unwrap();
    record.value.upload.as_mut().unwrap().token = "someone else".into();
    w.registry.update(&record.value, record.revision).unwrap();
    let e = upload.await.unwrap().unwrap_err();
    assert!(matches!(e, ImageError::Conflict(ref m) if m.contains("taken over")), "{e:?}");
    assert!(w.store.partial.lock().unwrap().is_empty() && w.store.data.lock().unwrap().is_empty());
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_uploads_are_killed_and_keep_nothing() {
    let settings = Settings { image_size_cap: 10, user_storage_quota: 15, ..Settings::default() };
    let w = world_with(settings, MemRegistry::default());
    let owner = tenant("acme");
    let bad_sum = NewImage { changes: vec![Change::Checksum(Some("0".repeat(32)))], ..Default::default() };
    let e = w.images.create(&owner, bad_sum, Some(bytes(b"abc"))).await.unwrap_err();
    assert!(matches!(e, ImageError::ChecksumMismatch { .. }), "{e:?}");
    let declared = NewImage { changes: vec![Change::Size(5)], ..Default::default() };
    let e = w.images.create(&owner, declared, Some(bytes(b"abc"))).await.unwrap_err();
    assert!(matches!(e, ImageError::SizeMismatch(_)), "{e:?}");
    let (tx, body) = channel();
    tx.send(Ok(Bytes::from(vec![0; 11]))).await.unwrap();
    drop(tx);
    let chunked = Data { source: Source::Stream { body, length: None }, store: None };
    let e = w.images.create(&owner, NewImage::default(), Some(chunked)).await.unwrap_err();
    assert_eq!(e, ImageError::CapExceeded { cap: 10 });
    w.images.create(&owner, NewImage::default(), Some(bytes(&[1; 10]))).await.unwrap();
    let e = w.images.create(&owner, NewImage::default(), Some(bytes(&[2; 6]))).await.unwrap_err();
    assert_eq!(e, ImageError::OverQuota { left: 5, quota: 15 }, "the registry's usage figure answers");
    let statuses: Vec<Status> = w.registry.records.lock().unwrap().values().map(|(_, i)| i.status.clone()).collect();
    assert_eq!(statuses.len(), 4, "the size mismatch was refused before anything was created");
    assert_eq!(statuses.iter().filter(|s| **s == Status::Killed).count(), 3, "{statuses:?}");
    assert_eq!(w.store.data.lock().unwrap().len(), 1, "only the good image has data");
    assert!(w.store.partial.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_upload_with_a_checksum_keeps_only_data_that_has_it() {
    let w = world();
    let owner = tenant("acme");
    let queued = w.images.create(&owner, formatted(), None).await.unwrap();
    let e = w.images.upload(&owner, queued.id, bytes(b"abc"), Some("0".repeat(32))).await.unwrap_err();
    assert!(matches!(e, ImageError::ChecksumMismatch { .. }), "{e:?}");
    let killed = w.images.record(queued.id).await.unwrap().value;
    assert_eq!((killed.status, killed.checksum), (Status::Killed, None), "the declaration went with the data");
    assert!(w.store.data.lock().unwrap().is_empty() && w.store.partial.lock().unwrap().is_empty());
    let queued = w.images.create(&owner, formatted(), None).await.unwrap();
    let done = w.images.upload(&owner, queued.id, bytes(b"abc"), Some(md5(b"abc"))).await.unwrap();
    assert_eq!((done.status, done.checksum), (Status::Active, Some(md5(b"abc"))));
    // An image that is not queued: refused for its status, whatever the declaration.
    let e = w.images.upload(&owner, queued.id, bytes(b"abc"), Some("0".repeat(32))).await.unwrap_err();
    assert!(matches!(e, ImageError::WrongStatus { .. }), "{e:?}");
    // A declaration that contradicts the record's checksum (v1's): refused before any byte.
    let mut reserved = formatted();
    reserved.changes.push(Change::Checksum(Some(md5(b"abc"))));
    let reserved = w.images.create(&owner, reserved, None).await.unwrap();
    let e = w.images.upload(&owner, reserved.id, bytes(b"xyz"), Some(md5(b"xyz"))).await.unwrap_err();
    assert!(matches!(e, ImageError::Invalid { field: "checksum", .. }), "{e:?}");
    assert_eq!(w.images.record(reserved.id).await.unwrap().value.status, Status::Queued, "nothing began");
}

#[tokio::test]
async fn a_driver_that_ignores_a_filter_is_refused_not_believed() {
    let w = world_with(Settings::default(), MemRegistry { ignores_filters: true, ..Default::default() });
    let admin = Caller::admin();
    let new = |name: &str| NewImage { changes: vec![Change::Name(Some(name.into()))], ..Default::default() };
    w.images.create(&admin, new("a"), None).await.unwrap();
    w.images.create(&admin, new("b"), None).await.unwrap();
    let mut q = ListQuery::new(admin.viewer());
    q.filters.name = Some("a".into());
    q.filters.is_public = None;
    let e = w.images.list(&admin, q).await.unwrap_err();
    assert!(
        matches!(e, ImageError::Registry { kind: ErrorKind::UNSUPPORTED, ref message } if message.contains("upgrade")),
        "{e:?}"
    );
}

#[tokio::test]
async fn store_messages_reach_clients_without_paths() {
    let w = world();
    let admin = Caller::admin();
    let image = w.images.create(&admin, NewImage::default(), Some(bytes(b"abc"))).await.unwrap();
    w.store.data.lock().unwrap().clear();
    let e = w.images.download(&admin, image.id, None).await.unwrap_err();
    assert!(!e.to_string().contains("/srv/secret"), "{e}");
    assert!(matches!(e, ImageError::Store { kind: ErrorKind::NOT_FOUND, .. }), "{e:?}");
}

/// A new image with its formats set, as v2 needs before data.
fn formatted() -> NewImage {
    let changes = vec![Change::DiskFormat(Some(DiskFormat::Raw)), Change::ContainerFormat(Some(ContainerFormat::Bare))];
    NewImage { changes, ..Default::default() }
}

#[tokio::test]
async fn v2_sharing_needs_a_shared_image_refuses_a_second_offer_and_shows_members_only_themselves() {
    let w = world();
    let owner = tenant("acme");
    let private = NewImage { changes: vec![Change::Visibility(Visibility::Private)], ..Default::default() };
    let image = w.images.create(&owner, private, None).await.unwrap();
    let e = w.images.offer(&owner, image.id, "friend").await.unwrap_err();
    assert!(matches!(e, ImageError::NotAllowed(ref why) if why.contains("visibility shared")), "{e:?}");
    w.images.update_metadata(&owner, image.id, vec![Change::Visibility(Visibility::Shared)], None).await.unwrap();
    let m = w.images.offer(&owner, image.id, "friend").await.unwrap();
    assert_eq!(m.status, MemberStatus::Pending);
    assert!(matches!(w.images.offer(&owner, image.id, "friend").await, Err(ImageError::Conflict(_))));
    w.images.offer(&owner, image.id, "other").await.unwrap();
    let mine: Vec<String> =
        w.images.memberships(&tenant("friend"), image.id).await.unwrap().into_iter().map(|m| m.member_id).collect();
    assert_eq!(mine, ["friend"], "a member sees its own membership only");
    assert_eq!(w.images.memberships(&owner, image.id).await.unwrap().len(), 2, "the owner sees all");
    let e = w.images.offer(&tenant("friend"), image.id, "third").await.unwrap_err();
    assert!(e.is_not_found(), "only the owner offers: {e:?}");
}

#[tokio::test]
async fn formats_the_operator_did_not_enable_and_the_servers_properties_are_refused() {
    let settings = Settings { disk_formats: vec![DiskFormat::Qcow2], ..Settings::default() };
    let w = world_with(settings, MemRegistry::default());
    let owner = tenant("acme");
    let raw = NewImage { changes: vec![Change::DiskFormat(Some(DiskFormat::Raw))], ..Default::default() };
    let e = w.images.create(&owner, raw, None).await.unwrap_err();
    assert!(e.to_string().contains("not enabled") && e.to_string().contains("qcow2"), "{e}");
    let image = w.images.create(&owner, NewImage::default(), None).await.unwrap();
    let set = vec![Change::SetProperty("os_glance_failed_import".into(), "x".into())];
    let e = w.images.update_metadata(&owner, image.id, set, None).await.unwrap_err();
    assert!(matches!(e, ImageError::NotAllowed(_)), "{e:?}");
    // A replace keeps the server's own properties as they are.
    let mut record = w.images.get(&owner, image.id).await.unwrap();
    record.value.properties.insert("os_glance_importing_to_stores".into(), "fs".into());
    w.registry.update(&record.value, record.revision).unwrap();
    let replace = vec![Change::ReplaceProperties([("a".to_string(), "b".to_string())].into())];
    let kept = w.images.update_metadata(&owner, image.id, replace, None).await.unwrap().value;
    assert_eq!(kept.properties.get("os_glance_importing_to_stores").map(String::as_str), Some("fs"));
    assert_eq!(kept.properties.get("a").map(String::as_str), Some("b"));
}

#[tokio::test]
async fn a_copy_leaves_one_store_only_while_another_keeps_the_data() {
    let w = world();
    let admin = Caller::admin();
    let image = w.images.create(&tenant("acme"), formatted(), Some(bytes(b"two copies"))).await.unwrap();
    // A second copy in another store, as copy-image will make it.
    let mut record = w.images.get(&admin, image.id).await.unwrap();
    let copy = ImageLocation::stored(Location::parse("other://copy").unwrap(), "elsewhere");
    record.value.locations.insert(0, copy.clone());
    w.registry.update(&record.value, record.revision).unwrap();
    let e = w.images.remove_from_store(&tenant("acme"), image.id, "mem").await.unwrap_err();
    assert!(matches!(e, ImageError::Forbidden { .. }), "admins only; the owner is told so: {e:?}");
    let e = w.images.remove_from_store(&tenant("stranger"), image.id, "mem").await.unwrap_err();
    assert!(e.is_not_found(), "another tenant's private image reads as not found: {e:?}");
    let after = w.images.remove_from_store(&admin, image.id, "mem").await.unwrap();
    assert_eq!(after.locations, vec![copy], "the other copy stays");
    assert!(w.store.data.lock().unwrap().is_empty(), "the removed copy's data is gone");
    let e = w.images.remove_from_store(&admin, image.id, "mem").await.unwrap_err();
    assert!(matches!(e, ImageError::Invalid { field: "store", .. }), "{e:?}");
    let single = w.images.create(&admin, formatted(), Some(bytes(b"one copy"))).await.unwrap();
    let e = w.images.remove_from_store(&admin, single.id, "mem").await.unwrap_err();
    assert!(matches!(e, ImageError::Conflict(ref why) if why.contains("only copy")), "{e:?}");
    assert_eq!(w.store.data.lock().unwrap().len(), 1, "the only copy stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_whose_server_died_goes_back_to_queued_with_its_store_named_and_no_data() {
    let w = world();
    let mut image = Image::new(ImageId::random(), super::now());
    image.status = Status::Importing;
    image.upload = Some(dead_lease("t"));
    w.registry.create(&image).unwrap();
    w.store.partial.lock().unwrap().insert(image.id, b"half an import".to_vec());
    assert_eq!(w.images.recover(false).await.unwrap(), 1);
    let after = w.images.record(image.id).await.unwrap().value;
    assert_eq!((after.status, after.upload), (Status::Queued, None));
    assert_eq!(after.properties.get(crate::data::FAILED_IMPORT).map(String::as_str), Some("mem"));
    assert!(w.store.partial.lock().unwrap().is_empty(), "the partial data is gone");
    // Deleting an import in progress stops it like an upload: pending_delete, then deleted.
    let mut importing = Image::new(ImageId::random(), super::now());
    importing.status = Status::Importing;
    importing.upload = Some(dead_lease("u"));
    w.registry.create(&importing).unwrap();
    w.images.delete(&Caller::admin(), importing.id).await.unwrap();
    assert_eq!(w.images.record(importing.id).await.unwrap().value.status, Status::PendingDelete);
    w.images.recover(false).await.unwrap();
    assert_eq!(w.images.record(importing.id).await.unwrap().value.status, Status::Deleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_stage_goes_back_to_queued_and_a_dead_glance_direct_import_back_to_its_staged_data() {
    let w = world();
    let mut staging = Image::new(ImageId::random(), super::now());
    staging.status = Status::Uploading;
    staging.upload = Some(dead_lease("stage"));
    w.registry.create(&staging).unwrap();
    let mut importing = Image::new(ImageId::random(), super::now());
    importing.status = Status::Importing;
    importing.upload = Some(dead_lease("import"));
    importing.locations.push(ImageLocation::staged(Location::parse("mem://staged").unwrap(), "mem"));
    w.registry.create(&importing).unwrap();
    let mut waiting = Image::new(ImageId::random(), super::now());
    waiting.status = Status::Uploading;
    waiting.locations.push(ImageLocation::staged(Location::parse("mem://waiting").unwrap(), "mem"));
    w.registry.create(&waiting).unwrap();
    assert_eq!(w.images.recover(false).await.unwrap(), 2, "the staged image waiting for its import is no one's work");
    let s = w.images.record(staging.id).await.unwrap().value;
    assert_eq!((s.status, s.upload, s.locations.len()), (Status::Queued, None, 0));
    let i = w.images.record(importing.id).await.unwrap().value;
    assert_eq!((i.status.clone(), i.upload.clone()), (Status::Uploading, None), "ready for another import");
    assert!(i.staged().is_some() && i.location().is_none(), "the staged data stays, and is not the image's data");
    assert_eq!(w.images.record(waiting.id).await.unwrap().value.status, Status::Uploading);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_deleted_during_its_glance_direct_import_keeps_no_staged_data() {
    let w = world();
    let mut image = Image::new(ImageId::random(), super::now());
    image.status = Status::PendingDelete;
    image.upload = Some(dead_lease("t"));
    let staged = Location::parse("mem://staged-copy").unwrap();
    image.locations.push(ImageLocation::staged(staged.clone(), "mem"));
    w.registry.create(&image).unwrap();
    w.store.data.lock().unwrap().insert(staged.expose().to_owned(), b"staged".to_vec());
    w.store.partial.lock().unwrap().insert(image.id, b"half".to_vec());
    assert_eq!(w.images.recover(false).await.unwrap(), 1);
    assert_eq!(w.images.record(image.id).await.unwrap().value.status, Status::Deleted);
    assert!(w.store.data.lock().unwrap().is_empty(), "the staged copy went with the image");
    assert!(w.store.partial.lock().unwrap().is_empty(), "and the import's partial data");

    // A staged image waiting for its import: deleted with its staged copy.
    let mut waiting = Image::new(ImageId::random(), super::now());
    waiting.status = Status::Uploading;
    let copy = Location::parse("mem://waiting-copy").unwrap();
    waiting.locations.push(ImageLocation::staged(copy.clone(), "mem"));
    w.registry.create(&waiting).unwrap();
    w.store.data.lock().unwrap().insert(copy.expose().to_owned(), b"staged".to_vec());
    w.images.delete(&Caller::admin(), waiting.id).await.unwrap();
    assert_eq!(w.images.record(waiting.id).await.unwrap().value.status, Status::Deleted);
    assert!(w.store.data.lock().unwrap().is_empty());
}

/// The lease of an upload whose server, "gone", stopped long ago, on the mem store.
fn dead_lease(token: &str) -> Upload {
    Upload {
        node: "gone".into(),
        token: token.into(),
        store: "mem".into(),
        lease_until: Timestamp::from_unix_micros(1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_image_adds_copies_store_by_store_while_the_image_serves_on() {
    let m = multi(&["mem", "fast", "cheap"]);
    let admin = Caller::admin();
    let data = b"copied everywhere".repeat(1000);
    let image = m.images.create(&tenant("acme"), formatted(), Some(bytes(&data))).await.unwrap();
    let e = m.images.copy_image(&tenant("acme"), image.id, into(&["fast"], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::Forbidden { .. }), "admins only by default, and the owner is told so: {e:?}");
    let started = m.images.copy_image(&admin, image.id, into(&["fast", "cheap"], true)).await.unwrap();
    assert_eq!(started.status, Status::Active, "the image serves on while it is copied");
    assert_eq!(started.properties.get(crate::IMPORTING_TO).map(String::as_str), Some("fast,cheap"));
    let e = m.images.copy_image(&admin, image.id, into(&["cheap"], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::Conflict(_)), "one copy at a time: {e:?}");
    let done = m.settled(image.id).await;
    assert_eq!(done.status, Status::Active);
    assert_eq!(stores_of(&done), ["mem", "fast", "cheap"]);
    assert!(!done.properties.contains_key(crate::IMPORTING_TO) && !done.properties.contains_key(crate::FAILED_IMPORT));
    assert_eq!((done.checksum.clone(), done.size), (Some(md5(&data)), data.len() as u64), "the image is unchanged");
    for store in ["mem", "fast", "cheap"] {
        assert_eq!(m.data_in(store), std::slice::from_ref(&data), "{store} holds the data once");
    }
    assert!(!m.partial_left());
    // Downloads read the first copy; removing it leaves the others serving.
    m.images.remove_from_store(&admin, image.id, "mem").await.unwrap();
    let (_, mut download) = m.images.download(&admin, image.id, None).await.unwrap();
    let mut got = Vec::new();
    while let Some(piece) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut download), cx)).await
    {
        got.extend_from_slice(&piece.unwrap());
    }
    assert_eq!(got, data);

    // What a copy refuses, before anything changes.
    let e = m.images.copy_image(&admin, image.id, into(&["fast"], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::Conflict(ref why) if why.contains("store fast")), "{e:?}");
    let e = m.images.copy_image(&admin, image.id, into(&[], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::Invalid { field: "stores", .. }), "{e:?}");
    let e = m.images.copy_image(&admin, image.id, into(&["staging"], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::Invalid { field: "store", .. }), "staged data only: {e:?}");
    let e = m.images.copy_image(&admin, image.id, into(&["nowhere"], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::UnknownStore { .. }), "{e:?}");
    let all = crate::ImportTo { all_stores: true, ..into(&[], true) };
    let again = m.images.copy_image(&admin, image.id, all.clone()).await.unwrap();
    assert_eq!(again.properties.get(crate::IMPORTING_TO).map(String::as_str), Some("mem"), "only the store without");
    assert_eq!(stores_of(&m.settled(image.id).await), ["fast", "cheap", "mem"]);
    let e = m.images.copy_image(&admin, image.id, all).await.unwrap_err();
    assert!(matches!(e, ImageError::Conflict(ref why) if why.contains("every store")), "{e:?}");
    let queued = m.images.create(&admin, formatted(), None).await.unwrap();
    let e = m.images.copy_image(&admin, queued.id, into(&["fast"], true)).await.unwrap_err();
    assert!(matches!(e, ImageError::WrongStatus { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_fails_a_copy_reverts_it_or_is_named_as_the_client_chose() {
    let m = multi(&["mem", "fast", "down"]);
    *m.store("down").down.lock().unwrap() = true;
    let admin = Caller::admin();
    let image = m.images.create(&admin, formatted(), Some(bytes(b"precious"))).await.unwrap();
    // All must succeed: the copy made before the failure goes again.
    m.images.copy_image(&admin, image.id, into(&["fast", "down"], true)).await.unwrap();
    let after = m.settled(image.id).await;
    assert_eq!((after.status.clone(), stores_of(&after)), (Status::Active, vec!["mem"]));
    assert_eq!(after.properties.get(crate::FAILED_IMPORT).map(String::as_str), Some("down"));
    assert!(!after.properties.contains_key(crate::IMPORTING_TO));
    assert_eq!((m.held_by("mem"), m.held_by("fast")), (1, 0), "the original stays, the copy went");
    // Not all: the copies that worked stay, the failed store is named.
    m.images.copy_image(&admin, image.id, into(&["down", "fast"], false)).await.unwrap();
    let after = m.settled(image.id).await;
    assert_eq!(stores_of(&after), ["mem", "fast"]);
    assert_eq!(after.properties.get(crate::FAILED_IMPORT).map(String::as_str), Some("down"));
    assert_eq!(m.held_by("fast"), 1);
    assert!(!m.partial_left(), "no partial data anywhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_glance_direct_import_into_several_stores_is_active_once_all_have_it_or_goes_back_to_its_staged_data() {
    let m = multi(&["mem", "fast", "down"]);
    *m.store("down").down.lock().unwrap() = true;
    let admin = Caller::admin();
    let staged = |data: &[u8]| {
        let data = data.to_vec();
        let images = &m.images;
        let admin = admin.clone();
        async move {
            let image = images.create(&admin, formatted(), None).await.unwrap();
            images.stage(&admin, image.id, bytes(&data), None).await.unwrap();
            image.id
        }
    };
    let id = staged(b"everywhere").await;
    let importing = m.images.import_staged(&admin, id, into(&["fast", "mem"], true)).await.unwrap();
    assert_eq!(importing.status, Status::Importing);
    let done = m.settled(id).await;
    assert_eq!((done.status.clone(), stores_of(&done)), (Status::Active, vec!["fast", "mem"]));
    assert!(done.staged().is_none() && m.held_by("staging") == 0, "the staged copy went");
    assert_eq!(done.checksum, Some(md5(b"everywhere")));

    // One store fails and all must succeed: back to the staged data, no copy anywhere.
    let id = staged(b"not everywhere").await;
    m.images.import_staged(&admin, id, into(&["fast", "down"], true)).await.unwrap();
    let back = m.settled(id).await;
    assert_eq!(back.status, Status::Uploading, "ready for another import");
    assert!(back.staged().is_some() && stores_of(&back).is_empty());
    assert_eq!(back.checksum, None);
    assert_eq!(back.properties.get(crate::FAILED_IMPORT).map(String::as_str), Some("down"));
    assert_eq!((m.held_by("fast"), m.held_by("staging")), (1, 1), "only the first image's copy and this staged data");
    // Another try, where failing stores may fail: active in the store that worked.
    m.images.import_staged(&admin, id, into(&["fast", "down"], false)).await.unwrap();
    let done = m.settled(id).await;
    assert_eq!((done.status.clone(), stores_of(&done)), (Status::Active, vec!["fast"]));
    assert_eq!(done.properties.get(crate::FAILED_IMPORT).map(String::as_str), Some("down"));
    assert_eq!(m.held_by("staging"), 0);
    assert!(!m.partial_left());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_whose_server_died_is_ended_by_the_next_copy_and_a_delete_takes_every_copy() {
    let m = multi(&["mem", "fast"]);
    let admin = Caller::admin();
    let image = m.images.create(&admin, formatted(), Some(bytes(b"data"))).await.unwrap();
    let mut record = m.images.record(image.id).await.unwrap();
    record.value.upload = Some(Upload { store: "fast".into(), ..dead_lease("gone") });
    m.registry.update(&record.value, record.revision).unwrap();
    m.store("fast").partial.lock().unwrap().insert(image.id, b"da".to_vec());
    m.images.copy_image(&admin, image.id, into(&["fast"], true)).await.unwrap();
    let done = m.settled(image.id).await;
    assert_eq!(stores_of(&done), ["mem", "fast"]);
    assert!(!m.partial_left(), "the dead copy's partial data went");

    // A delete during a copy stops it, and every copy goes with the image.
    *m.store("fast").finish_takes.lock().unwrap() = Duration::from_millis(300);
    let second = m.images.create(&admin, formatted(), Some(bytes(b"second"))).await.unwrap();
    m.images.copy_image(&admin, second.id, into(&["fast"], true)).await.unwrap();
    m.images.delete(&admin, second.id).await.unwrap();
    let gone = m.settled(second.id).await;
    assert_eq!(gone.status, Status::Deleted);
    assert_eq!((m.held_by("mem"), m.held_by("fast")), (1, 1), "only the first image's copies are left");
    assert!(!m.partial_left());
}
