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
/// arrive as 0/1 words). Returns the engineering value (raw × scale) with the
/// device's precision and no binary noise:
/// - an integer × scale is exact to the scale's decimals (raw 95 × 0.01 reads
///   0.95, not 0.9500000000000001; × 0.25 keeps two decimals);
/// - an `f32` keeps every digit of its shortest decimal form (0.0004 A reads
///   0.0004), times the scale's decimals.
pub fn decode(field: &Field, words: &[u16]) -> f64 {
    let raw = match field.value_type {
        ValueType::Bool => return f64::from(u8::from(words[0] != 0)),
        ValueType::U16 => f64::from(words[0]),
        ValueType::I16 => f64::from(words[0] as i16),
        ValueType::U32 => f64::from(join(words, field.word_order)),
        ValueType::I32 => f64::from(join(words, field.word_order) as i32),
        ValueType::F32 => {
            let v = f32::from_bits(join(words, field.word_order));
            if !v.is_finite() {
                return f64::from(v);
            }
            // An f32 carries ~7 significant digits; widen it through its
            // shortest decimal form rather than its binary expansion.
            let shortest = v.to_string();
            let widened = shortest.parse::<f64>().unwrap_or(f64::from(v));
            let digits = decimals_of(&shortest) + decimals(field.scale);
            return round_decimals(widened * field.scale, digits);
        }
    };
    round_decimals(raw * field.scale, decimals(field.scale))
}

/// Decimals in the shortest form of `step` (0.1 → 1, 0.25 → 2, 10 → 0).
/// Remembered per step: printing the step is an allocation and a float
/// print, and a decode asks for every value of every sample (nine a lamp)
/// while profiles have a handful of scales.
fn decimals(step: f64) -> i32 {
    thread_local! {
        static SEEN: std::cell::RefCell<Vec<(u64, i32)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let bits = step.to_bits();
    SEEN.with(|seen| {
        if let Some(&(_, d)) = seen.borrow().iter().find(|(b, _)| *b == bits) {
            return d;
        }
        let d = decimals_of(&step.abs().to_string());
        let mut seen = seen.borrow_mut();
        // Bounded: a profile set with more scales than this prints the rest.
        if seen.len() < 32 {
            seen.push((bits, d));
        }
        d
    })
}

/// Digits after the point in a decimal number as Rust prints it (never in
/// exponent form for f32/f64 `Display`).
fn decimals_of(text: &str) -> i32 {
    text.split_once('.')
        .map_or(0, |(_, frac)| frac.len() as i32)
}

fn round_decimals(v: f64, decimals: i32) -> f64 {
    let decimals = decimals.clamp(0, 15);
    let f = 10f64.powi(decimals);
    let r = (v * f).round() / f;
    // Beyond f64's reach (huge values with many decimals) keep the value.
    if r.is_finite() {
        r
    } else {
        v
    }
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

#[cfg(test)]
mod remembered {
    use super::{decimals, decimals_of};

    /// The remembered count is the printed one, first time and after.
    #[test]
    fn decimals_are_those_of_the_printed_step_every_time() {
        for step in [1.0, 0.1, 0.01, 0.001, 0.25, 10.0, -0.5, 1e-7, 0.3 * 3.0] {
            let printed = decimals_of(&f64::abs(step).to_string());
            assert_eq!(decimals(step), printed, "{step}");
            assert_eq!(decimals(step), printed, "{step}, remembered");
        }
    }
}
