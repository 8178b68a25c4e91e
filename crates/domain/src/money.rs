//! Money and quantities. Money is a decimal with exactly two places, never a float, never
//! rounded: input with more places is refused.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Why an amount of money is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal number such as 12.50")]
    NotANumber,
    #[error("must have at most two decimal places")]
    TooManyDecimals,
    #[error("must be greater than zero")]
    NotPositive,
    #[error("must be at most {max}")]
    TooLarge { max: Money },
    #[error("the amount is too large to compute")]
    Overflow,
}

/// A non-negative amount with exactly two decimal places and at most [`Money::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(Decimal);

impl Money {
    /// The largest amount the system stores anywhere (an order of 100 lines of 10 000 units at
    /// the highest unit price): 10^12.
    pub const MAX: Money = Money(Decimal::from_parts(276_447_232, 23_283, 0, false, 2));
    /// The highest unit price the contract allows.
    pub const MAX_UNIT_PRICE: Money = Money(Decimal::from_parts(100_000_000, 0, 0, false, 2));
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, 2));

    /// Parses a positive amount written as plain decimal digits with an optional point and at
    /// most two decimals (`12`, `12.5`, `12.50`), at most `max`.
    pub fn parse_positive(raw: &str, max: Money) -> Result<Self, MoneyError> {
        let unsigned = raw.strip_prefix('-').unwrap_or(raw);
        let (int_part, frac_part) = match unsigned.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (unsigned, None),
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
            return Err(MoneyError::NotANumber);
        }
        if frac_part.is_some_and(|f| f.len() > 2) {
            return Err(MoneyError::TooManyDecimals);
        }
        let significant = int_part.trim_start_matches('0');
        if significant.len() > 15 {
            // Far beyond every limit; refuse before the decimal type could overflow.
            return if raw.starts_with('-') { Err(MoneyError::NotPositive) } else { Err(MoneyError::TooLarge { max }) };
        }
        // Leading zeros carry nothing and would only overflow the decimal type's 28 digits.
        let unsigned = match frac_part {
            Some(frac) => format!("{}.{frac}", if significant.is_empty() { "0" } else { significant }),
            None => (if significant.is_empty() { "0" } else { significant }).to_owned(),
        };
        let mut value = Decimal::from_str(&unsigned).map_err(|_| MoneyError::NotANumber)?;
        value.rescale(2);
        if raw.starts_with('-') || value.is_zero() {
            return Err(MoneyError::NotPositive);
        }
        let money = Money(value);
        if money > max {
            return Err(MoneyError::TooLarge { max });
        }
        Ok(money)
    }

    /// Rebuilds an amount read back from storage, checking the invariants again.
    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::NotPositive);
        }
        if value.scale() > 2 && value.normalize().scale() > 2 {
            return Err(MoneyError::TooManyDecimals);
        }
        let mut value = value;
        value.rescale(2);
        let money = Money(value);
        if money > Self::MAX {
            return Err(MoneyError::TooLarge { max: Self::MAX });
        }
        Ok(money)
    }

    pub fn amount(self) -> Decimal {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let sum = self.0.checked_add(other.0).ok_or(MoneyError::Overflow)?;
        let money = Money(sum);
        if money > Self::MAX {
            return Err(MoneyError::Overflow);
        }
        Ok(money)
    }

    /// `self - other`, refusing to go below zero.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        (other <= self).then(|| {
            let mut diff = self.0 - other.0;
            diff.rescale(2);
            Money(diff)
        })
    }

    pub fn checked_mul(self, quantity: Quantity) -> Result<Money, MoneyError> {
        let product = self.0.checked_mul(Decimal::from(quantity.get())).ok_or(MoneyError::Overflow)?;
        let mut money = Money(product);
        money.0.rescale(2);
        if money > Self::MAX {
            return Err(MoneyError::Overflow);
        }
        Ok(money)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

/// Why a quantity is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("must be a whole number")]
    NotAnInteger,
    #[error("must be between 1 and 10000")]
    OutOfRange,
}

/// Why a JSON number's text is not a whole number of the range `i64` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WholeNumberError {
    NotAnInteger,
    OutOfRange,
}

/// The value of a JSON number's text that is a whole number: `2`, and also `2.0` or `2e0`,
/// which JSON Schema counts as integers too.
pub fn whole_number(raw: &str) -> Result<i64, WholeNumberError> {
    let unsigned = raw.strip_prefix('-').unwrap_or(raw);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit() || b".eE+-".contains(&b)) {
        return Err(WholeNumberError::NotAnInteger);
    }
    if unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return raw.parse::<i64>().map_err(|_| WholeNumberError::OutOfRange);
    }
    let value = if unsigned.contains(['e', 'E']) { Decimal::from_scientific(raw) } else { Decimal::from_str(raw) };
    match value {
        Ok(value) if !value.fract().is_zero() => Err(WholeNumberError::NotAnInteger),
        Ok(value) => i64::try_from(value).map_err(|_| WholeNumberError::OutOfRange),
        // Too many digits or too large an exponent for the decimal type: far out of range, or
        // a fraction too small to tell from zero (also not a whole number).
        Err(_) => Err(WholeNumberError::OutOfRange),
    }
}

/// A number of units on an order line: 1 to 10 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 10_000;

    pub fn new(value: i64) -> Result<Self, QuantityError> {
        if (1..=i64::from(Self::MAX)).contains(&value) {
            Ok(Self(value as u32))
        } else {
            Err(QuantityError::OutOfRange)
        }
    }

    /// Parses a JSON number's text whose value is a whole number: `2`, and also `2.0` or
    /// `2e0`, which JSON Schema counts as integers too.
    pub fn parse(raw: &str) -> Result<Self, QuantityError> {
        match whole_number(raw) {
            Ok(value) => Self::new(value),
            Err(WholeNumberError::NotAnInteger) => Err(QuantityError::NotAnInteger),
            Err(WholeNumberError::OutOfRange) => Err(QuantityError::OutOfRange),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }

    pub fn checked_add(self, other: Quantity) -> Result<Quantity, QuantityError> {
        Self::new(i64::from(self.0) + i64::from(other.0))
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(raw: &str) -> Result<Money, MoneyError> {
        Money::parse_positive(raw, Money::MAX_UNIT_PRICE)
    }

    #[test]
    fn constants_are_what_they_say() {
        assert_eq!(Money::MAX.to_string(), "1000000000000.00");
        assert_eq!(Money::MAX_UNIT_PRICE.to_string(), "1000000.00");
        assert_eq!(Money::ZERO.to_string(), "0.00");
    }

    #[test]
    fn always_two_places() {
        assert_eq!(price("12").unwrap().to_string(), "12.00");
        assert_eq!(price("12.5").unwrap().to_string(), "12.50");
        assert_eq!(price("0.01").unwrap().to_string(), "0.01");
        assert_eq!(price("007.10").unwrap().to_string(), "7.10");
        assert_eq!(price(&format!("{}12.50", "0".repeat(60))).unwrap().to_string(), "12.50");
        assert_eq!(price(&format!("{}.05", "0".repeat(60))).unwrap().to_string(), "0.05");
    }

    #[test]
    fn never_rounds() {
        assert_eq!(price("12.345"), Err(MoneyError::TooManyDecimals));
        assert_eq!(price("12.500"), Err(MoneyError::TooManyDecimals));
        assert_eq!(price("0.001"), Err(MoneyError::TooManyDecimals));
    }

    #[test]
    fn refuses_what_is_not_a_positive_bounded_amount() {
        assert_eq!(price("0"), Err(MoneyError::NotPositive));
        assert_eq!(price("0.00"), Err(MoneyError::NotPositive));
        assert_eq!(price("-1.00"), Err(MoneyError::NotPositive));
        assert_eq!(price("1000000.01"), Err(MoneyError::TooLarge { max: Money::MAX_UNIT_PRICE }));
        assert!(price("1000000.00").is_ok());
        assert_eq!(price("1e3"), Err(MoneyError::NotANumber));
        assert_eq!(price("abc"), Err(MoneyError::NotANumber));
        assert_eq!(price(""), Err(MoneyError::NotANumber));
        assert_eq!(price(" 12.50"), Err(MoneyError::NotANumber));
        assert_eq!(price("1."), Err(MoneyError::NotANumber));
        assert_eq!(price(".5"), Err(MoneyError::NotANumber));
        assert_eq!(price("NaN"), Err(MoneyError::NotANumber));
        assert_eq!(price(&"9".repeat(400)), Err(MoneyError::TooLarge { max: Money::MAX_UNIT_PRICE }));
    }

    #[test]
    fn arithmetic_is_exact_and_checked() {
        let a = price("0.10").unwrap();
        let b = price("0.20").unwrap();
        assert_eq!(a.checked_add(b).unwrap().to_string(), "0.30");
        assert_eq!(b.checked_sub(a).unwrap().to_string(), "0.10");
        assert_eq!(a.checked_sub(b), None);
        let line = Money::MAX_UNIT_PRICE.checked_mul(Quantity::new(10_000).unwrap()).unwrap();
        assert_eq!(line.to_string(), "10000000000.00");
        assert_eq!(Money::MAX.checked_add(a), Err(MoneyError::Overflow));
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(10_001).is_err());
        assert_eq!(Quantity::parse("10000").unwrap().get(), 10_000);
        assert_eq!(Quantity::parse("1.5"), Err(QuantityError::NotAnInteger));
        assert_eq!(Quantity::parse("99999999999999999999999"), Err(QuantityError::OutOfRange));
        assert_eq!(Quantity::parse("-3"), Err(QuantityError::OutOfRange));
        // JSON Schema's integers: a number whose value is whole.
        assert_eq!(Quantity::parse("205.0").unwrap().get(), 205);
        assert_eq!(Quantity::parse("2.05e2").unwrap().get(), 205);
        assert_eq!(Quantity::parse("1E3").unwrap().get(), 1000);
        assert_eq!(Quantity::parse("2.5"), Err(QuantityError::NotAnInteger));
        assert_eq!(Quantity::parse("1e400"), Err(QuantityError::OutOfRange));
        assert_eq!(Quantity::parse("1e5"), Err(QuantityError::OutOfRange));
        assert_eq!(Quantity::parse("0.0"), Err(QuantityError::OutOfRange));
        assert_eq!(Quantity::parse("1.2.3"), Err(QuantityError::OutOfRange));
    }

    #[test]
    fn from_storage_keeps_two_places() {
        assert_eq!(Money::from_decimal(Decimal::new(1250, 2)).unwrap().to_string(), "12.50");
        assert_eq!(Money::from_decimal(Decimal::new(125, 1)).unwrap().to_string(), "12.50");
        assert!(Money::from_decimal(Decimal::new(-1, 2)).is_err());
    }
}
