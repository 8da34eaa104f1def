//! The declarative macros the contract's numbered enums are written with, so that a number,
//! its variant and its printed name are declared once and every conversion follows.

/// Declares a `#[repr(u8)]` enum whose numbers travel in a layout, with the conversions
/// both sides need: `from_u8` (`None` for a number the contract does not define), `as_u8`,
/// `ALL` in declaration order, `name` for printing, and `From`/`TryFrom` with `u8`.
///
/// ```text
/// u8_enum! {
///     /// What it is.
///     pub enum Colour {
///         /// What red means.
///         Red = 0 => "red",
///         Green = 1 => "green",
///     }
/// }
/// ```
macro_rules! u8_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal => $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        $vis enum $name {
            $($(#[$vmeta])* $variant = $value,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value with this number, or `None` for a number the contract does not
            /// define.
            pub const fn from_u8(v: u8) -> Option<$name> {
                match v {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The number it travels as.
            pub const fn as_u8(self) -> u8 {
                self as u8
            }

            /// Its short name, as tools print it.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.as_u8()
            }
        }

        impl TryFrom<u8> for $name {
            /// The number that names no value.
            type Error = u8;

            fn try_from(v: u8) -> Result<$name, u8> {
                $name::from_u8(v).ok_or(v)
            }
        }
    };
}

pub(crate) use u8_enum;

#[cfg(test)]
mod tests {
    u8_enum! {
        /// A test enum with a gap in its numbers.
        enum Sample {
            A = 0 => "a",
            B = 1 => "b",
            D = 3 => "d",
        }
    }

    #[test]
    fn numbers_round_trip_and_gaps_are_refused() {
        for &s in Sample::ALL {
            assert_eq!(Sample::from_u8(s.as_u8()), Some(s));
            assert_eq!(Sample::try_from(u8::from(s)), Ok(s));
        }
        assert_eq!(Sample::ALL.len(), 3);
        assert_eq!(Sample::from_u8(2), None);
        assert_eq!(Sample::try_from(200), Err(200));
        assert_eq!(Sample::D.name(), "d");
    }
}
