//! Fuzz target: the aggregator's decoding and validation of a pushed report
//! (`aggregator::decode_report`); an accepted report encodes and decodes back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = aggregator::decode_report(data) {
        assert!(aggregator::valid_node_name(&r.node.name));
        let bytes = serde_json::to_vec(&r).expect("an accepted report encodes");
        let again = aggregator::decode_report(&bytes).expect("an encoded report is accepted");
        assert_eq!(again, r);
    }
});
