//! ITU-T G.711 u-law (PCMU) and A-law (PCMA): 8-bit companded samples <-> 16-bit linear.
//!
//! Decoding is a 256-entry table built at compile time from the formulas of the reference
//! implementation (Sun Microsystems' `g711.c`, public domain), so decoding one byte is one
//! load. The encoders are here for tests, benchmarks and the fake switch, which must produce
//! what FreeSWITCH sends.

/// The linear value of every u-law byte.
static ULAW_TO_LINEAR: [i16; 256] = build_ulaw_table();
/// The linear value of every A-law byte.
static ALAW_TO_LINEAR: [i16; 256] = build_alaw_table();

/// Decodes one u-law byte.
#[inline]
pub fn ulaw_to_linear(byte: u8) -> i16 {
    ULAW_TO_LINEAR[usize::from(byte)]
}

/// Decodes one A-law byte.
#[inline]
pub fn alaw_to_linear(byte: u8) -> i16 {
    ALAW_TO_LINEAR[usize::from(byte)]
}

/// Encodes one linear sample as u-law (the reference encoder: bias 0x84, clip at 32635).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut pcm = i32::from(sample);
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7F
    } else {
        0xFF
    };
    let pcm = pcm.min(CLIP) + BIAS;
    // The segment is the position of the highest set bit above bit 7 (pcm is 0x84..=0x7FFF).
    let segment = (31 - pcm.leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (pcm >> (segment + 3)) & 0x0F;
    // Both operands fit in a byte: segment <= 7, mantissa <= 15.
    (((segment << 4) | mantissa) as u8) ^ mask
}

/// Encodes one linear sample as A-law (the reference encoder on the top 13 bits).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    // pcm is 0..=4095 here; segment ends are 0x1F, 0x3F, ..., 0xFFF.
    let segment = (32 - pcm.leading_zeros() as i32 - 5).clamp(0, 7);
    let mantissa = if segment < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> segment) & 0x0F
    };
    (((segment << 4) | mantissa) as u8) ^ mask
}

const fn ulaw_formula(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0F) as i32;
    // At most ((15 << 3) + 0x84) << 7 - 0x84 = 32124: fits an i16.
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_formula(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mut magnitude = (((a & 0x0F) as i32) << 4) + 8;
    if exponent != 0 {
        // At most (0xF8 + 0x100) << 6 = 32256: fits an i16.
        magnitude = (magnitude + 0x100) << (exponent - 1);
    }
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn build_ulaw_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_formula(i as u8);
        i += 1;
    }
    table
}

const fn build_alaw_table() -> [i16; 256] {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_formula(i as u8);
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_decodes_the_reference_values() {
        // Values from the G.711 tables: 0xFF and 0x7F are the two zeros, 0x80/0x00 the extremes.
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0xF0), 120);
    }

    #[test]
    fn alaw_decodes_the_reference_values() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn every_ulaw_code_survives_decode_then_encode() {
        for byte in 0..=255u8 {
            // 0x7F is u-law's negative zero: it decodes to 0, which encodes as 0xFF.
            let expected = if byte == 0x7F { 0xFF } else { byte };
            assert_eq!(
                linear_to_ulaw(ulaw_to_linear(byte)),
                expected,
                "code {byte:#04x}"
            );
        }
    }

    #[test]
    fn every_alaw_code_survives_decode_then_encode() {
        for byte in 0..=255u8 {
            assert_eq!(
                linear_to_alaw(alaw_to_linear(byte)),
                byte,
                "code {byte:#04x}"
            );
        }
    }

    #[test]
    fn companding_error_stays_within_half_a_step() {
        // u-law: the step of a segment is 1/16 of its lower edge (magnitude + 0x84), so the
        // round-trip error is at most (|x| + 132) / 32. A-law: the same ratio above the
        // first two segments, a step of 16 below; one unit of slack for integer rounding.
        for sample in -32000..=32000i32 {
            let x = sample as i16;
            let u = i32::from(ulaw_to_linear(linear_to_ulaw(x)));
            let a = i32::from(alaw_to_linear(linear_to_alaw(x)));
            assert!(
                (u - sample).abs() <= (sample.abs() + 132) / 32 + 1,
                "ulaw {sample} -> {u}"
            );
            assert!(
                (a - sample).abs() <= (sample.abs() / 32).max(8) + 1,
                "alaw {sample} -> {a}"
            );
        }
    }
}
