//! Fuzz target: decoding a pushed report as the aggregator does (`serde_json` into
//! `proto::NodeReport`); a decoded report encodes and decodes back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = serde_json::from_slice::<proto::NodeReport>(data) {
        let bytes = serde_json::to_vec(&r).expect("a decoded report encodes");
        let again: proto::NodeReport =
            serde_json::from_slice(&bytes).expect("an encoded report decodes");
        assert_eq!(again.node.name, r.node.name);
        assert_eq!(again.checks.len(), r.checks.len());
    }
});
