//! Column values that no plain Rust type reads, as the text the database itself shows for them:
//! MySQL's `DECIMAL`, dates and times, PostgreSQL's `numeric`, dates and times, `uuid` and `json`.
//! A login query binds the login name, so it is a prepared statement, and both servers send these
//! values in their binary forms, which are decoded here.

use sqlx::error::BoxDynError;
use sqlx::{Decode, Type, TypeInfo as _, ValueRef as _};
use sqlx_mysql::{MySql, MySqlTypeInfo, MySqlValueRef};
use sqlx_postgres::{PgTypeInfo, PgValueRef, Postgres};

/// A MySQL `DECIMAL`, `JSON`, `SET`, `YEAR`, `DATE`, `DATETIME`, `TIMESTAMP` or `TIME` as text. A zero
/// date (`0000-00-00`) is no value, like `NULL`.
pub(super) struct MySqlText(pub(super) String);

impl Type<MySql> for MySqlText {
    fn type_info() -> MySqlTypeInfo {
        <&str as Type<MySql>>::type_info()
    }

    fn compatible(ty: &MySqlTypeInfo) -> bool {
        matches!(
            ty.name(),
            "DECIMAL" | "JSON" | "SET" | "YEAR" | "DATE" | "DATETIME" | "TIMESTAMP" | "TIME"
        )
    }
}

impl<'r> Decode<'r, MySql> for MySqlText {
    fn decode(value: MySqlValueRef<'r>) -> Result<Self, BoxDynError> {
        let type_name = value.type_info().name().to_owned();
        let bytes = <&[u8] as Decode<MySql>>::decode(value)?;
        let text = match type_name.as_str() {
            "YEAR" => match bytes {
                [lo, hi] => u16::from_le_bytes([*lo, *hi]).to_string(),
                _ => return Err(format!("a YEAR of {} bytes", bytes.len()).into()),
            },
            "DATE" => mysql_date_time(bytes, false)?,
            "DATETIME" | "TIMESTAMP" => mysql_date_time(bytes, true)?,
            "TIME" => mysql_time(bytes)?,
            // DECIMAL, JSON and SET come as text.
            _ => std::str::from_utf8(bytes)?.to_owned(),
        };
        Ok(Self(text))
    }
}

/// A PostgreSQL `date`, `time`, `timestamp`, `timestamptz` (shown in UTC), `numeric`, `uuid`,
/// `json`, `jsonb` or `oid` as text.
pub(super) struct PgText(pub(super) String);

impl Type<Postgres> for PgText {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        matches!(
            ty.name(),
            "DATE"
                | "TIME"
                | "TIMESTAMP"
                | "TIMESTAMPTZ"
                | "NUMERIC"
                | "UUID"
                | "JSON"
                | "JSONB"
                | "OID"
        )
    }
}

impl<'r> Decode<'r, Postgres> for PgText {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let type_name = value.type_info().name().to_owned();
        let bytes = <&[u8] as Decode<Postgres>>::decode(value)?;
        let sized = |n: usize| {
            if bytes.len() == n {
                Ok(bytes)
            } else {
                Err(format!("a {type_name} of {} bytes", bytes.len()))
            }
        };
        let text = match type_name.as_str() {
            "DATE" => pg_date(i32::from_be_bytes(sized(4)?.try_into()?)),
            "TIME" => pg_time_of_day(i64::from_be_bytes(sized(8)?.try_into()?)),
            "TIMESTAMP" => pg_timestamp(i64::from_be_bytes(sized(8)?.try_into()?)),
            "TIMESTAMPTZ" => {
                let at = pg_timestamp(i64::from_be_bytes(sized(8)?.try_into()?));
                if at.ends_with("infinity") {
                    at
                } else {
                    at + "+00"
                }
            }
            "NUMERIC" => pg_numeric(bytes)?,
            "UUID" => uuid(sized(16)?),
            "OID" => u32::from_be_bytes(sized(4)?.try_into()?).to_string(),
            // jsonb: a version byte (1), then the text.
            "JSONB" => match bytes.split_first() {
                Some((1, text)) => std::str::from_utf8(text)?.to_owned(),
                _ => return Err("a jsonb of an unknown version".into()),
            },
            _ => std::str::from_utf8(bytes)?.to_owned(),
        };
        Ok(Self(text))
    }
}

impl std::fmt::Display for MySqlText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for PgText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A MySQL binary `DATE`, `DATETIME` or `TIMESTAMP` (its length byte first: 0, 4, 7 or 11) as
/// `YYYY-MM-DD[ HH:MM:SS[.ffffff]]`.
fn mysql_date_time(bytes: &[u8], with_time: bool) -> Result<String, BoxDynError> {
    let (&len, rest) = bytes.split_first().ok_or("an empty date")?;
    if rest.len() < usize::from(len) || !matches!(len, 0 | 4 | 7 | 11) {
        return Err(format!("a date of {len} bytes").into());
    }
    let field = |i: usize| rest.get(i).copied().unwrap_or(0);
    let year = u16::from_le_bytes([field(0), field(1)]);
    let mut text = format!("{year:04}-{:02}-{:02}", field(2), field(3));
    if with_time {
        text += &format!(" {:02}:{:02}:{:02}", field(4), field(5), field(6));
        if len == 11 {
            let micros = u32::from_le_bytes([field(7), field(8), field(9), field(10)]);
            if micros != 0 {
                text += &format!(".{micros:06}");
            }
        }
    }
    Ok(text)
}

/// A MySQL binary `TIME` (its length byte first: 0, 8 or 12) as `[-]HH:MM:SS[.ffffff]`, its hours
/// counting the days.
fn mysql_time(bytes: &[u8]) -> Result<String, BoxDynError> {
    let (&len, rest) = bytes.split_first().ok_or("an empty time")?;
    if rest.len() < usize::from(len) || !matches!(len, 0 | 8 | 12) {
        return Err(format!("a time of {len} bytes").into());
    }
    let field = |i: usize| rest.get(i).copied().unwrap_or(0);
    let sign = if field(0) == 1 { "-" } else { "" };
    let days = u32::from_le_bytes([field(1), field(2), field(3), field(4)]);
    let hours = u64::from(days) * 24 + u64::from(field(5));
    let mut text = format!("{sign}{hours:02}:{:02}:{:02}", field(6), field(7));
    if len == 12 {
        let micros = u32::from_le_bytes([field(8), field(9), field(10), field(11)]);
        if micros != 0 {
            text += &format!(".{micros:06}");
        }
    }
    Ok(text)
}

/// Days from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
const PG_EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A PostgreSQL `date` (days since 2000-01-01) as `YYYY-MM-DD`, years before 1 as `… BC`.
fn pg_date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => civil_date(i64::from(days) + PG_EPOCH_DAYS),
    }
}

/// A PostgreSQL `timestamp` (microseconds since 2000-01-01 00:00) as
/// `YYYY-MM-DD HH:MM:SS[.ffffff]`, without the fraction's trailing zeros, as PostgreSQL shows it.
fn pg_timestamp(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let (date, time) = (
                civil_date(days + PG_EPOCH_DAYS),
                pg_time_of_day(micros.rem_euclid(MICROS_PER_DAY)),
            );
            match date.strip_suffix(" BC") {
                Some(date) => format!("{date} {time} BC"),
                None => format!("{date} {time}"),
            }
        }
    }
}

/// Microseconds since midnight as `HH:MM:SS[.ffffff]` (trailing zeros of the fraction dropped).
fn pg_time_of_day(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let fraction = micros.rem_euclid(1_000_000);
    let mut text = format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    );
    if fraction != 0 {
        text += format!(".{fraction:06}").trim_end_matches('0');
    }
    text
}

/// Days since 1970-01-01 as a proleptic Gregorian `YYYY-MM-DD` (years before 1 as `… BC`).
fn civil_date(days: i64) -> String {
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if year >= 1 {
        format!("{year:04}-{month:02}-{day:02}")
    } else {
        format!("{:04}-{month:02}-{day:02} BC", 1 - year)
    }
}

/// A PostgreSQL binary `numeric`: digit count, weight (of the first base-10000 digit), sign and
/// display scale, each 16 bits, then the base-10000 digits. Shown with exactly the scale's
/// decimals, as PostgreSQL shows it.
fn pg_numeric(bytes: &[u8]) -> Result<String, BoxDynError> {
    let word = |i: usize| -> Result<u16, BoxDynError> {
        let pair = bytes.get(2 * i..2 * i + 2).ok_or("a truncated numeric")?;
        Ok(u16::from_be_bytes([pair[0], pair[1]]))
    };
    let (count, weight, sign, scale) = (
        usize::from(word(0)?),
        i64::from(word(1)? as i16),
        word(2)?,
        usize::from(word(3)?),
    );
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => return Err(format!("a numeric with the sign {sign:#x}").into()),
    }
    let digits = (0..count)
        .map(|i| word(4 + i))
        .collect::<Result<Vec<u16>, _>>()?;
    let digit = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        text += &digit(0).to_string();
        for i in 1..=weight {
            text += &format!("{:04}", digit(i));
        }
    }
    if scale > 0 {
        let mut fraction = String::new();
        let mut i = weight + 1;
        while fraction.len() < scale {
            fraction += &format!("{:04}", digit(i));
            i += 1;
        }
        fraction.truncate(scale);
        text.push('.');
        text += &fraction;
    }
    Ok(text)
}

/// 16 bytes as a hyphenated lowercase UUID.
fn uuid(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_binary_dates_and_times_read_as_mysql_shows_them() {
        // 2024-03-01 09:30:05.000250, with its length byte first
        let full = [11, 0xe8, 0x07, 3, 1, 9, 30, 5, 0xfa, 0, 0, 0];
        assert_eq!(
            mysql_date_time(&full, true).unwrap(),
            "2024-03-01 09:30:05.000250"
        );
        assert_eq!(mysql_date_time(&full, false).unwrap(), "2024-03-01");
        assert_eq!(
            mysql_date_time(&[7, 0xe8, 0x07, 3, 1, 9, 30, 5], true).unwrap(),
            "2024-03-01 09:30:05"
        );
        assert_eq!(
            mysql_date_time(&[4, 0xe8, 0x07, 12, 31], true).unwrap(),
            "2024-12-31 00:00:00",
            "midnight is sent without its time"
        );
        assert!(mysql_date_time(&[], true).is_err());
        assert!(
            mysql_date_time(&[7, 0xe8, 0x07], true).is_err(),
            "truncated"
        );
        assert!(mysql_date_time(&[5, 0, 0, 0, 0, 0], true).is_err());

        // -(1 day 6:15:00), and 838:59:59.5
        assert_eq!(
            mysql_time(&[8, 1, 1, 0, 0, 0, 6, 15, 0]).unwrap(),
            "-30:15:00"
        );
        assert_eq!(
            mysql_time(&[12, 0, 34, 0, 0, 0, 22, 59, 59, 0x20, 0xa1, 0x07, 0]).unwrap(),
            "838:59:59.500000"
        );
        assert_eq!(mysql_time(&[0]).unwrap(), "00:00:00");
        assert!(mysql_time(&[8, 0, 0]).is_err(), "truncated");
    }

    #[test]
    fn postgres_dates_and_times_read_as_postgres_shows_them() {
        assert_eq!(pg_date(0), "2000-01-01");
        assert_eq!(pg_date(8825), "2024-02-29");
        assert_eq!(pg_date(-10_957), "1970-01-01");
        assert_eq!(pg_date(-730_119), "0001-01-01");
        assert_eq!(pg_date(-730_120), "0001-12-31 BC");
        assert_eq!(pg_date(i32::MAX), "infinity");
        assert_eq!(pg_date(i32::MIN), "-infinity");
        // 2024-03-01 09:30:00.25
        let at = (8826 * 86_400 + 9 * 3600 + 30 * 60) * 1_000_000 + 250_000;
        assert_eq!(pg_timestamp(at), "2024-03-01 09:30:00.25");
        assert_eq!(pg_timestamp(-1), "1999-12-31 23:59:59.999999");
        assert_eq!(
            pg_timestamp(-730_120 * MICROS_PER_DAY + 1_000_000),
            "0001-12-31 00:00:01 BC"
        );
        assert_eq!(pg_timestamp(i64::MAX), "infinity");
        assert_eq!(pg_time_of_day(86_399_000_000), "23:59:59");
    }

    #[test]
    fn postgres_numerics_keep_their_scale() {
        // digit count, weight, sign, scale, then base-10000 digits
        let numeric = |words: &[u16]| {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
            pg_numeric(&bytes).unwrap()
        };
        assert_eq!(numeric(&[2, 0, 0, 2, 12, 5000]), "12.50");
        assert_eq!(numeric(&[3, 1, 0x4000, 3, 12, 3456, 7890]), "-123456.789");
        assert_eq!(numeric(&[1, 0xffff, 0, 4, 1]), "0.0001");
        assert_eq!(numeric(&[1, 0xfffe, 0, 6, 1200]), "0.000012");
        assert_eq!(
            numeric(&[1, 2, 0, 0, 7]),
            "700000000",
            "trailing zero digits are not sent"
        );
        assert_eq!(numeric(&[0, 0, 0, 2]), "0.00");
        assert_eq!(numeric(&[0, 0, 0xC000, 0]), "NaN");
        assert!(
            pg_numeric(&[0, 3, 0, 0, 0, 0, 0, 0, 0, 1]).is_err(),
            "truncated"
        );
    }

    #[test]
    fn uuids_are_hyphenated() {
        let bytes: Vec<u8> = (0..16).map(|i| i * 17).collect();
        assert_eq!(uuid(&bytes), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
