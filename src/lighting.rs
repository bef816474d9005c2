//! The lighting rule (亮灯): whether a lamp should be lit, and whether it is.
//! This is its only home. The figures now apply it to the live state; the
//! state applies it to every lamp sample it hands to the store, which keeps
//! the verdict with the sample, so the rollups behind the windowed lighting
//! rate only add up seconds and the figures now and over a window cannot
//! disagree on the same facts.

/// Supply voltage at the lamp from which its circuit counts as energised,
/// when no online RTU tells the contactor state.
pub const ENERGISED_MIN_V: f64 = 100.0;

/// What the rule looks at for one lamp at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LampFacts {
    /// The SLC answered its last polls (the online rule); an offline lamp is
    /// neither expected nor lit: nothing is known of it.
    pub online: bool,
    /// The lamp's relay, as its SLC reports it.
    pub relay_on: bool,
    /// Power the SLC measures (W).
    pub power_w: Option<f64>,
    /// Supply voltage the SLC measures (V).
    pub voltage_v: Option<f64>,
    /// The SLC's lamp-failure flag.
    pub lamp_failure: bool,
    /// The switch state the last confirmed command gave the lamp, if any.
    pub commanded: Option<bool>,
    /// The contactor of the lamp's circuit, when the cabinet's RTU is online
    /// and has reported; `None` otherwise.
    pub contactor_closed: Option<bool>,
    /// Power above which a lamp that is on counts as lit (from its SLC's profile).
    pub lit_threshold_w: f64,
    /// What the schedule (or an override on a scheduled lamp) says the lamp
    /// should be now; `None` for a lamp no calendar governs.
    pub scheduled: Option<bool>,
}

/// The verdict for one lamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lighting {
    /// Should be lit: what the schedule says now for a lamp it governs (a
    /// lamp the schedule has off is not expected, one it has on is expected
    /// whatever its relay or circuit do); otherwise commanded on (by the last
    /// confirmed command, else its own relay) and its circuit energised.
    pub expected: bool,
    /// Lit: expected, drawing more than its threshold, no lamp failure.
    pub lit: bool,
}

impl LampFacts {
    /// The circuit is energised per its RTU's contactor when the RTU is
    /// online, else per the supply voltage the SLC measures.
    pub fn energised(&self) -> bool {
        match self.contactor_closed {
            Some(closed) => closed,
            None => self.voltage_v.is_some_and(|v| v >= ENERGISED_MIN_V),
        }
    }

    /// Whether the lamp should be lit and whether it is.
    pub fn judge(&self) -> Lighting {
        if !self.online {
            return Lighting::default();
        }
        let expected = match self.scheduled {
            Some(on) => on,
            None => self.energised() && self.commanded.unwrap_or(self.relay_on),
        };
        let lit = expected
            && self.power_w.is_some_and(|p| p > self.lit_threshold_w)
            && !self.lamp_failure;
        Lighting { expected, lit }
    }
}

/// Should be lit, for a lamp no SLC reading tells about: its SLC is offline
/// or was never polled, or it has no SLC. What the schedule says for a lamp
/// it governs; otherwise its circuit energised per the contactor of an
/// online RTU and not commanded off by the last confirmed command (a lamp
/// without an SLC has no relay: it burns when its circuit is energised).
/// `None` when nothing tells: no schedule and no online RTU.
pub fn expected_unobserved(
    scheduled: Option<bool>,
    contactor_closed: Option<bool>,
    commanded: Option<bool>,
) -> Option<bool> {
    if scheduled.is_some() {
        return scheduled;
    }
    let energised = contactor_closed?;
    Some(energised && commanded != Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An online lamp, relay on, 220 V, drawing 80 W against a 5 W
    /// threshold, no RTU, no command: should be lit and is.
    fn lamp() -> LampFacts {
        LampFacts {
            online: true,
            relay_on: true,
            power_w: Some(80.0),
            voltage_v: Some(220.0),
            lamp_failure: false,
            commanded: None,
            contactor_closed: None,
            lit_threshold_w: 5.0,
            scheduled: None,
        }
    }

    #[test]
    fn the_schedule_decides_what_should_be_lit() {
        // Scheduled off: not expected, even with the relay on and drawing.
        let off = LampFacts {
            scheduled: Some(false),
            ..lamp()
        };
        assert_eq!(off.judge(), verdict(false, false));
        // Scheduled on but dark (relay off, no power, circuit dead): expected
        // and not lit, so it counts against the rate.
        let dark = LampFacts {
            scheduled: Some(true),
            relay_on: false,
            power_w: Some(0.0),
            voltage_v: Some(0.0),
            ..lamp()
        };
        assert_eq!(dark.judge(), verdict(true, false));
        let lit = LampFacts {
            scheduled: Some(true),
            ..lamp()
        };
        assert_eq!(lit.judge(), verdict(true, true));
    }

    fn verdict(expected: bool, lit: bool) -> Lighting {
        Lighting { expected, lit }
    }

    #[test]
    fn a_lamp_on_and_drawing_power_is_lit() {
        assert_eq!(lamp().judge(), verdict(true, true));
    }

    #[test]
    fn an_offline_lamp_counts_for_nothing() {
        let f = LampFacts {
            online: false,
            ..lamp()
        };
        assert_eq!(f.judge(), verdict(false, false));
    }

    #[test]
    fn a_lamp_off_should_not_be_lit() {
        let f = LampFacts {
            relay_on: false,
            power_w: Some(0.0),
            ..lamp()
        };
        assert_eq!(f.judge(), verdict(false, false));
    }

    #[test]
    fn a_confirmed_command_outranks_the_relay() {
        // Commanded on but the relay stayed off: should be lit, is not.
        let f = LampFacts {
            relay_on: false,
            power_w: Some(0.0),
            commanded: Some(true),
            ..lamp()
        };
        assert_eq!(f.judge(), verdict(true, false));
        // Commanded off while it burns: not expected, so not counted lit.
        let f = LampFacts {
            commanded: Some(false),
            ..lamp()
        };
        assert_eq!(f.judge(), verdict(false, false));
    }

    #[test]
    fn without_an_rtu_the_supply_voltage_tells_energised() {
        for (v, energised) in [
            (Some(ENERGISED_MIN_V), true),
            (Some(ENERGISED_MIN_V - 0.1), false),
            (Some(0.0), false),
            (None, false),
        ] {
            let f = LampFacts {
                voltage_v: v,
                ..lamp()
            };
            assert_eq!(f.energised(), energised, "{v:?}");
            assert_eq!(f.judge().expected, energised, "{v:?}");
        }
    }

    #[test]
    fn an_online_rtu_contactor_outranks_the_voltage() {
        let open = LampFacts {
            contactor_closed: Some(false),
            ..lamp()
        };
        assert_eq!(open.judge(), verdict(false, false));
        let closed = LampFacts {
            contactor_closed: Some(true),
            voltage_v: Some(0.0),
            power_w: Some(0.0),
            ..lamp()
        };
        assert_eq!(closed.judge(), verdict(true, false));
    }

    #[test]
    fn unobserved_lamps_follow_the_schedule_else_the_contactor() {
        // (scheduled, contactor, commanded) → expected
        for (sched, contactor, commanded, want) in [
            (Some(true), None, None, Some(true)),
            (Some(false), Some(true), Some(true), Some(false)),
            (None, Some(true), None, Some(true)),
            (None, Some(true), Some(false), Some(false)),
            (None, Some(false), Some(true), Some(false)),
            (None, None, Some(true), None),
        ] {
            assert_eq!(
                expected_unobserved(sched, contactor, commanded),
                want,
                "{sched:?} {contactor:?} {commanded:?}"
            );
        }
    }

    #[test]
    fn lit_needs_power_above_the_threshold_and_no_failure() {
        for (power, failure, lit) in [
            (Some(5.0), false, false),
            (Some(5.1), false, true),
            (None, false, false),
            (Some(80.0), true, false),
        ] {
            let f = LampFacts {
                power_w: power,
                lamp_failure: failure,
                ..lamp()
            };
            assert_eq!(f.judge(), verdict(true, lit), "{power:?} {failure}");
        }
    }
}
