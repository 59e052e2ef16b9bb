//! memstore against the sdk's store conformance suite: a vendor's plugin runs the same
//! suite as Tank's own.

#[test]
fn passes_the_store_conformance_suite() {
    tank_sdk::conformance::store::run::<tank_example_memstore::MemStore>(
        serde_json::json!({}),
        std::path::Path::new("/"),
        &["memstore"],
    );
}
