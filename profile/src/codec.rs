//! Raw registers ⇄ engineering values.

use crate::{Field, ValueType, WordOrder};

fn join(words: &[u16], order: WordOrder) -> u32 {
    let (hi, lo) = match order {
        WordOrder::ABCD => (words[0], words[1]),
        WordOrder::CDAB => (words[1], words[0]),
    };
    (u32::from(hi) << 16) | u32::from(lo)
}

fn split(v: u32, order: WordOrder) -> [u16; 2] {
    let (hi, lo) = ((v >> 16) as u16, v as u16);
    match order {
        WordOrder::ABCD => [hi, lo],
        WordOrder::CDAB => [lo, hi],
    }
}

/// Decodes a field from its registers (`words.len() == field.width()`; bits
/// arrive as 0/1 words). Returns the engineering value (raw × scale), rounded
/// to the field's resolution so 0.95 reads as 0.95, not 0.9500000000000001.
pub fn decode(field: &Field, words: &[u16]) -> f64 {
    let raw = match field.value_type {
        ValueType::Bool => return f64::from(u8::from(words[0] != 0)),
        ValueType::U16 => f64::from(words[0]),
        ValueType::I16 => f64::from(words[0] as i16),
        ValueType::U32 => f64::from(join(words, field.word_order)),
        ValueType::I32 => f64::from(join(words, field.word_order) as i32),
        ValueType::F32 => {
            let v = f32::from_bits(join(words, field.word_order));
            // An f32 carries ~7 significant digits; widen it through its
            // shortest decimal form rather than its binary expansion.
            let widened = v.to_string().parse::<f64>().unwrap_or(f64::from(v));
            return round_to(widened * field.scale, field.scale / 1e3);
        }
    };
    round_to(raw * field.scale, field.scale)
}

/// Rounds to the decimal resolution of `step` (0.1 → one decimal).
fn round_to(v: f64, step: f64) -> f64 {
    let decimals = (-step.abs().log10()).ceil().clamp(0.0, 12.0) as i32;
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

/// Encodes an engineering value into the field's registers, rounding to the
/// field's resolution and clamping to its type's range.
pub fn encode(field: &Field, value: f64) -> Vec<u16> {
    let raw = value / field.scale;
    match field.value_type {
        ValueType::Bool => vec![u16::from(value != 0.0)],
        ValueType::U16 => vec![raw.round().clamp(0.0, f64::from(u16::MAX)) as u16],
        ValueType::I16 => {
            vec![raw.round().clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16 as u16]
        }
        ValueType::U32 => split(
            raw.round().clamp(0.0, f64::from(u32::MAX)) as u32,
            field.word_order,
        )
        .to_vec(),
        ValueType::I32 => split(
            raw.round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32 as u32,
            field.word_order,
        )
        .to_vec(),
        ValueType::F32 => split((raw as f32).to_bits(), field.word_order).to_vec(),
    }
}
