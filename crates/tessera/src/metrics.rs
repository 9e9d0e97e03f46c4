//! Prometheus metrics: what operators watch. Logins by outcome, tickets issued and validated,
//! validation latency, single-logout deliveries, and the database pool. Served as OpenMetrics text
//! at `/metrics` on the `[metrics] listen` address.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// How a login ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Credentials accepted.
    Success,
    /// Wrong username or password.
    Failure,
    /// Refused by throttling.
    Locked,
    /// Not decided: a login source could not be asked (an LDAP server down, say).
    Unavailable,
}

/// What was issued.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TicketKind {
    /// A CAS service ticket.
    Service,
    /// A CAS proxy ticket.
    Proxy,
    /// A CAS proxy-granting ticket.
    ProxyGranting,
    /// An OpenID Connect authorization code.
    AuthorizationCode,
    /// An OpenID Connect access token (with its refresh token).
    AccessToken,
}

/// How a validation ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ValidationOutcome {
    /// The ticket was valid.
    Success,
    /// It was refused (unknown, expired, wrong service, …).
    Failure,
    /// The server failed.
    Error,
}

/// What became of a single-logout delivery.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum SloOutcome {
    /// Delivered.
    Delivered,
    /// Not to be sent.
    Skipped,
    /// Failed; will be retried.
    Retry,
    /// Failed for too long; dropped.
    GaveUp,
}

/// Label values, snake_case as Prometheus names go.
macro_rules! labels {
    ($($ty:ty { $($variant:ident => $label:literal),+ $(,)? })+) => {
        $(impl $ty {
            fn label(self) -> &'static str {
                match self { $(Self::$variant => $label),+ }
            }
        })+
    };
}

labels! {
    LoginOutcome {
        Success => "success",
        Failure => "failure",
        Locked => "locked",
        Unavailable => "unavailable",
    }
    TicketKind {
        Service => "service_ticket",
        Proxy => "proxy_ticket",
        ProxyGranting => "proxy_granting_ticket",
        AuthorizationCode => "authorization_code",
        AccessToken => "access_token",
    }
    ValidationOutcome { Success => "success", Failure => "failure", Error => "error" }
    SloOutcome { Delivered => "delivered", Skipped => "skipped", Retry => "retry", GaveUp => "gave_up" }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Login {
    outcome: &'static str,
}
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Issued {
    kind: &'static str,
}
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Validated {
    outcome: &'static str,
}
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Slo {
    outcome: &'static str,
}

/// The server's metrics. Cheap to update from any task.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    logins: Family<Login, Counter>,
    issued: Family<Issued, Counter>,
    validated: Family<Validated, Counter>,
    validation_seconds: Histogram,
    slo: Family<Slo, Counter>,
    pool_connections: Gauge,
    pool_idle: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tessera");
        let logins = Family::<Login, Counter>::default();
        registry.register("logins", "Password logins, by outcome", logins.clone());
        let issued = Family::<Issued, Counter>::default();
        registry.register(
            "tickets_issued",
            "Tickets, codes and tokens issued, by kind",
            issued.clone(),
        );
        let validated = Family::<Validated, Counter>::default();
        registry.register(
            "ticket_validations",
            "CAS ticket validations, by outcome",
            validated.clone(),
        );
        // 100 µs … ~3 s.
        let validation_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 15));
        registry.register(
            "ticket_validation_seconds",
            "Time to validate a CAS ticket, store included",
            validation_seconds.clone(),
        );
        let slo = Family::<Slo, Counter>::default();
        registry.register(
            "single_logout_deliveries",
            "Single-logout and back-channel logout deliveries, by outcome",
            slo.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle",
            "Idle database connections",
            pool_idle.clone(),
        );
        Self {
            registry,
            logins,
            issued,
            validated,
            validation_seconds,
            slo,
            pool_connections,
            pool_idle,
        }
    }
}

impl Metrics {
    /// Counts a login.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins
            .get_or_create(&Login {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts an issued ticket, code or token.
    pub fn issued(&self, kind: TicketKind) {
        self.issued
            .get_or_create(&Issued { kind: kind.label() })
            .inc();
    }

    /// Counts a validation and records how long it took.
    pub fn validated(&self, outcome: ValidationOutcome, took: Duration) {
        self.validated
            .get_or_create(&Validated {
                outcome: outcome.label(),
            })
            .inc();
        self.validation_seconds.observe(took.as_secs_f64());
    }

    /// Counts a single-logout delivery outcome.
    pub fn slo(&self, outcome: SloOutcome) {
        self.slo
            .get_or_create(&Slo {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// The OpenMetrics text of every metric, with the pool figures given.
    pub fn render(&self, pool_connections: u32, pool_idle: u32) -> String {
        self.pool_connections.set(i64::from(pool_connections));
        self.pool_idle.set(i64::from(pool_idle));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text() {
        let m = Metrics::default();
        m.login(LoginOutcome::Success);
        m.login(LoginOutcome::Failure);
        m.login(LoginOutcome::Failure);
        m.login(LoginOutcome::Unavailable);
        m.issued(TicketKind::Service);
        m.validated(ValidationOutcome::Success, Duration::from_millis(2));
        m.slo(SloOutcome::Delivered);
        let text = m.render(4, 3);
        for line in [
            "tessera_logins_total{outcome=\"failure\"} 2",
            "tessera_logins_total{outcome=\"success\"} 1",
            "tessera_logins_total{outcome=\"unavailable\"} 1",
            "tessera_tickets_issued_total{kind=\"service_ticket\"} 1",
            "tessera_ticket_validations_total{outcome=\"success\"} 1",
            "tessera_ticket_validation_seconds_count 1",
            "tessera_single_logout_deliveries_total{outcome=\"delivered\"} 1",
            "tessera_db_pool_connections 4",
            "tessera_db_pool_idle 3",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
