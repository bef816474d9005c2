//! Registers decoded by any field shape: never a panic, and an integer field
//! encodes back to the registers it was decoded from.
#![no_main]
use lamp_profile::{decode, encode, Access, Field, Quantity, Table, ValueType, WordOrder};
use libfuzzer_sys::fuzz_target;

const TYPES: [ValueType; 6] = [
    ValueType::Bool,
    ValueType::U16,
    ValueType::I16,
    ValueType::U32,
    ValueType::I32,
    ValueType::F32,
];
/// Scales real profiles use.
const SCALES: [f64; 7] = [1.0, 0.1, 0.01, 0.001, 0.25, 0.5, 10.0];

fuzz_target!(|data: &[u8]| {
    let [t, order, scale, rest @ ..] = data else {
        return;
    };
    let value_type = TYPES[usize::from(*t) % TYPES.len()];
    let field = Field {
        quantity: Quantity::Power,
        table: Table::Holding,
        address: 0,
        value_type,
        word_order: if order % 2 == 0 {
            WordOrder::ABCD
        } else {
            WordOrder::CDAB
        },
        scale: SCALES[usize::from(*scale) % SCALES.len()],
        unit: None,
        access: Access::Read,
    };
    let words: Vec<u16> = rest
        .chunks_exact(2)
        .take(usize::from(field.width()))
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    if words.len() < usize::from(field.width()) {
        return;
    }
    let value = decode(&field, &words);
    if matches!(
        value_type,
        ValueType::U16 | ValueType::I16 | ValueType::U32 | ValueType::I32
    ) {
        assert_eq!(encode(&field, value), words, "{field:?} read {value}");
    }
});
