//! Unit tests of `osd.rs`.

use super::*;

/// `object_locator_t` decodes from version 6 up (newer versions append fields), and
/// refuses the pre-6 forms (no namespace or hash).
#[test]
fn object_locator_versions() {
    let l = ObjectLocator {
        pool: 3,
        key: "k".into(),
        ..ObjectLocator::default()
    };
    let mut b = Vec::new();
    l.encode(&mut b);
    assert_eq!(ObjectLocator::decode(&mut Decoder::new(&b)).unwrap(), l);
    b[0] = 7;
    assert_eq!(ObjectLocator::decode(&mut Decoder::new(&b)).unwrap(), l);
    b[0] = 5;
    assert!(matches!(
        ObjectLocator::decode(&mut Decoder::new(&b)),
        Err(DecodeError::InvalidValue { value: 5, .. })
    ));
}
