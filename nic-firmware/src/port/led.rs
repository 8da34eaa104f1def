//! The uplink's link LEDs through [`embedded_hal::digital::OutputPin`]: a link LED that
//! follows the link state, and an activity LED that blinks while frames move.
use embedded_hal::digital::{OutputPin, PinState};

/// Microseconds the activity LED stays in one state while frames move.
pub const BLINK_US: u64 = 50_000;

/// What the LEDs show and when the activity LED last toggled, without the pins: for a
/// caller that owns its pins elsewhere and lends them per update (the firmware borrows them
/// from its platform). A pin is written only when its state changes, and after
/// [`LedState::UNKNOWN`] on the next update whatever it shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedState {
    link: Option<bool>,
    lit: Option<bool>,
    toggled_us: u64,
}

impl Default for LedState {
    fn default() -> Self {
        LedState::UNKNOWN
    }
}

impl LedState {
    /// Pins in an unknown state: the next update writes both.
    pub const UNKNOWN: LedState = LedState {
        link: None,
        lit: None,
        toggled_us: 0,
    };

    /// True while the link LED is lit.
    pub fn link_lit(&self) -> bool {
        self.link == Some(true)
    }

    /// True while the activity LED is lit.
    pub fn activity_lit(&self) -> bool {
        self.lit == Some(true)
    }

    /// Shows the link state, and blinks the activity LED at [`BLINK_US`] while `busy` and
    /// the link is up (`now_us` is only read then).
    pub fn update<L: OutputPin, A: OutputPin<Error = L::Error>>(
        &mut self,
        link: &mut L,
        activity: &mut A,
        link_up: bool,
        busy: bool,
        now_us: u64,
    ) -> Result<(), L::Error> {
        if self.link != Some(link_up) {
            self.link = None;
            link.set_state(PinState::from(link_up))?;
            self.link = Some(link_up);
        }
        let was = self.lit.unwrap_or(false);
        let lit = if busy && link_up {
            if now_us.saturating_sub(self.toggled_us) >= BLINK_US {
                self.toggled_us = now_us;
                !was
            } else {
                was
            }
        } else {
            false
        };
        if self.lit != Some(lit) {
            self.lit = None;
            activity.set_state(PinState::from(lit))?;
            self.lit = Some(lit);
        }
        Ok(())
    }
}

/// The link and activity LEDs of one port (active-high; wrap an inverted pin otherwise).
pub struct LinkLeds<L, A> {
    link: L,
    activity: A,
    state: LedState,
}

impl<L: OutputPin, A: OutputPin<Error = L::Error>> LinkLeds<L, A> {
    /// Both LEDs, off.
    pub fn new(link: L, activity: A) -> Result<Self, L::Error> {
        let mut leds = LinkLeds {
            link,
            activity,
            state: LedState::UNKNOWN,
        };
        leds.state
            .update(&mut leds.link, &mut leds.activity, false, false, 0)?;
        Ok(leds)
    }

    /// Shows the link state, and blinks the activity LED at [`BLINK_US`] while `busy`
    /// (call it from the main loop with the firmware's `poll` result and the time).
    pub fn update(&mut self, link_up: bool, busy: bool, now_us: u64) -> Result<(), L::Error> {
        self.state
            .update(&mut self.link, &mut self.activity, link_up, busy, now_us)
    }

    /// Gives the pins back.
    pub fn release(self) -> (L, A) {
        (self.link, self.activity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::convert::Infallible;

    #[derive(Default)]
    struct Pin {
        high: bool,
        writes: u32,
    }

    impl embedded_hal::digital::ErrorType for Pin {
        type Error = Infallible;
    }

    impl OutputPin for Pin {
        fn set_low(&mut self) -> Result<(), Infallible> {
            self.high = false;
            self.writes += 1;
            Ok(())
        }
        fn set_high(&mut self) -> Result<(), Infallible> {
            self.high = true;
            self.writes += 1;
            Ok(())
        }
    }

    #[test]
    fn link_led_follows_link_and_activity_blinks_only_while_busy() {
        let mut leds = LinkLeds::new(Pin::default(), Pin::default()).unwrap();
        leds.update(true, false, 0).unwrap();
        let (link, act) = (&leds.link, &leds.activity);
        assert!(link.high && !act.high);
        leds.update(true, true, BLINK_US).unwrap();
        assert!(leds.activity.high);
        leds.update(true, true, BLINK_US + 1).unwrap();
        assert!(leds.activity.high, "no toggle before the period");
        leds.update(true, true, 2 * BLINK_US).unwrap();
        assert!(!leds.activity.high);
        leds.update(true, true, 3 * BLINK_US).unwrap();
        leds.update(false, true, 4 * BLINK_US).unwrap();
        let (link, act) = leds.release();
        assert!(!link.high && !act.high, "link down: both off");
    }
}
