//! The sled driver against the sdk's registry conformance suite, on a real database, and
//! its durability across a reopen.

use tank_plugin_sled::SledDriver;
use tank_sdk::{
    image::{Image, ImageId, Timestamp},
    OpenContext, RegistryDriver,
};

#[test]
fn passes_the_registry_conformance_suite() {
    let tmp = tempfile::tempdir().unwrap();
    tank_sdk::conformance::registry::run::<SledDriver>(serde_json::json!({"path": "registry"}), tmp.path());
}

#[test]
fn records_survive_a_reopen_and_a_second_opener_is_told_why_not() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = OpenContext {
        name: "sled".into(),
        config: serde_json::json!({"path": "registry"}),
        config_dir: tmp.path().to_path_buf(),
    };
    let image = Image::new(ImageId::random(), Timestamp::from_unix_micros(5));
    {
        let db = SledDriver::open(&ctx).unwrap();
        db.create(&image).unwrap();
        let second = SledDriver::open(&ctx).err().expect("sled allows one process at a time");
        assert!(second.message.contains("in use"), "{}", second.message);
    }
    let db = SledDriver::open(&ctx).unwrap();
    assert_eq!(db.get(image.id).unwrap().value, image);
}
