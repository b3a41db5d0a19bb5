//! Tests of the aarch64 tables: producer targets, host features, MIDR and SoC id.

use super::*;

fn req(p: &str) -> Vec<&'static str> {
    target_of(p).unwrap().required.into_iter().collect()
}

#[test]
fn generic_flags_are_the_generic_build() {
    assert_eq!(req(GLUTEN_GENERIC), GENERIC_FLAGS);
}

#[test]
fn march_wins_over_mcpu_and_last_wins() {
    let t = target_of("GNU C17 12.2.0 -mcpu=neoverse-n1 -march=armv8-a -mcpu=neoverse-v1").unwrap();
    assert_eq!(t.option, "-march=armv8-a");
    let t = target_of("GNU C17 12.2.0 -mcpu=neoverse-n1 -mcpu=zeus -mtune=cortex-a53").unwrap();
    assert_eq!(t.option, "-mcpu=zeus");
    assert!(t.required.contains("sve"));
}

#[test]
fn no_modifiers_remove_dependents() {
    let t = req("-mcpu=neoverse-v1+nosve");
    assert!(!t.contains(&"sve") && !t.contains(&"svei8mm") && t.contains(&"i8mm"));
    let t = req("-march=armv8.2-a+crypto+nocrypto");
    assert!(!t.contains(&"aes") && !t.contains(&"sha2"));
    let t = req("-mcpu=demeter+crypto+sve2-sha3+nosha2");
    assert!(!t.contains(&"sha3") && !t.contains(&"svesha3") && t.contains(&"aes"));
}

#[test]
fn clang_crypto_on_v8_4_includes_sha3_and_sm4() {
    assert!(req("clang version 17.0.6 -march=armv8.4a+crypto").contains(&"sha3"));
    assert!(!req("GNU C17 12.2.0 -march=armv8.4-a+crypto").contains(&"sha3"));
}

#[test]
fn signed_returns_on_v8_3_need_pauth() {
    assert!(req("GNU C17 12.2.0 -mcpu=neoverse-v1 -mbranch-protection=standard").contains(&"paca"));
    assert!(
        !req("GNU C17 12.2.0 -mcpu=neoverse-n1 -mbranch-protection=standard").contains(&"paca")
    );
    assert!(!req("GNU C17 12.2.0 -mcpu=neoverse-v1").contains(&"paca"));
}

#[test]
fn unknown_names_give_none() {
    assert_eq!(target_of("GNU C17 12.2.0 -mcpu=native"), None);
    assert_eq!(target_of("GNU C17 12.2.0 -march=armv8-a+warp"), None);
    assert_eq!(target_of("GNU C17 12.2.0 -O2 -g"), None);
}

#[test]
fn midr_fields_and_errors() {
    let m = parse_midr("0x00000000413fd0c1\n").unwrap();
    assert_eq!(
        (m.implementer, m.variant, m.part, m.revision),
        (0x41, 3, 0xd0c, 1)
    );
    assert_eq!(parse_midr("zz"), Err(MidrError::NotHex("zz".into())));
    assert_eq!(Midr::from_u64(1 << 40), Err(MidrError::TooWide(1 << 40)));
    let unknown = Midr {
        implementer: 0x61,
        variant: 0,
        part: 0x22,
        revision: 0,
    };
    assert_eq!(core_label(&unknown), "unknown-61-022");
}
