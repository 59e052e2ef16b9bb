//! The s3 store against a real Ceph radosgw.

use tank_plugin_s3::S3Store;
use tank_tests::ceph::Ceph;

/// The sdk's store conformance suite with `config`, the bucket's index checked empty
/// after every case (so unfinished multipart uploads count as leftovers).
fn conformance(bucket: &str, mut config: serde_json::Value, extra: serde_json::Value) {
    let ceph = Ceph::get();
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    let leftovers = || ceph.bucket_entries(bucket);
    let dir = tempfile::tempdir().unwrap();
    tank_sdk::conformance::store::run_with::<S3Store>(config, dir.path(), &["s3"], leftovers);
}

#[test]
fn passes_the_conformance_suite_with_single_puts_and_multipart_uploads() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("conformance");
    conformance(&bucket, ceph.store_json(&bucket), serde_json::json!({"create_bucket_on_put": true}));
}

#[test]
fn passes_the_conformance_suite_with_every_upload_multipart() {
    let ceph = Ceph::get();
    let bucket = ceph.bucket("multipart");
    conformance(
        &bucket,
        ceph.store_json(&bucket),
        serde_json::json!({"create_bucket_on_put": true, "large_object_size": 0, "large_object_chunk_size": 5}),
    );
}
