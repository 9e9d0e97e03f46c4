//! Back-channel single logout delivery (CAS 3.0 §2.3.3; protocol digest §2.5).
//!
//! Ending a session queues one delivery per service it entered, in the store, in the same
//! transaction. The dispatcher claims due deliveries (a lease, so one node sends each), and POSTs
//! each `LogoutRequest` on its own task: at most `max_parallel` in flight, each with a timeout, no
//! redirects followed. Any HTTP answer below 500 counts as delivered (clients answer 200, 302, even
//! 405); a 5xx or a network failure is retried with growing delays until `retry_for` has passed since
//! the logout. Nothing here is on the path of the user's logout response.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use tessera_protocol::cas::logout::{back_channel_body, logout_request_xml};
use tessera_protocol::service::LogoutType;
use tessera_protocol::ticket::random_base62;
use tessera_store::{SloDelivery, StoreResult};
use tokio::sync::{Notify, Semaphore};

use crate::app::AppState;
use crate::metrics::SloOutcome;

/// How a running dispatcher is told that deliveries were queued.
#[derive(Debug, Clone, Default)]
pub struct SloSignal(Arc<Notify>);

impl SloSignal {
    /// Wakes the dispatcher (a wake-up is kept if it is busy).
    pub fn wake(&self) {
        self.0.notify_one();
    }

    async fn woken(&self) {
        self.0.notified().await;
    }
}

/// The outbound HTTP client for logout requests: no redirects, no cookies, TLS verified.
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("Tessera/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Delay before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn backoff(attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(9);
    Duration::from_secs(1u64 << exponent).min(Duration::from_secs(300))
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered.
    Delivered,
    /// The service is not (or no longer) to be told by back channel.
    Skipped,
    /// It failed and will be retried.
    WillRetry,
    /// It failed for too long and was dropped.
    GaveUp,
}

/// Runs until the server stops: delivers what is due whenever woken, and every `poll_interval`.
pub async fn run(app: AppState, client: reqwest::Client) {
    let permits = Arc::new(Semaphore::new(app.settings.slo.max_parallel));
    loop {
        if let Err(e) = dispatch_due(&app, &client, &permits).await {
            tracing::warn!(error = %e, "single logout: reading the queue failed");
        }
        tokio::select! {
            () = app.slo.woken() => {}
            () = tokio::time::sleep(app.settings.slo.poll_interval) => {}
        }
    }
}

/// Claims as many due deliveries as there are free slots and sends each on its own task. Returns
/// the tasks, so a caller that must wait (the CLI) can.
pub async fn dispatch_due(
    app: &AppState,
    client: &reqwest::Client,
    permits: &Arc<Semaphore>,
) -> StoreResult<Vec<tokio::task::JoinHandle<Outcome>>> {
    let mut tasks = Vec::new();
    loop {
        let free = u32::try_from(permits.available_permits()).unwrap_or(u32::MAX);
        if free == 0 {
            return Ok(tasks);
        }
        let lease = app.settings.slo.timeout * 2 + Duration::from_secs(5);
        let batch = app
            .store
            .claim_slo_deliveries(app.clock.now(), lease, free)
            .await?;
        let full = u32::try_from(batch.len()).unwrap_or(u32::MAX) == free;
        for delivery in batch {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return Ok(tasks);
            };
            let (app, client) = (app.clone(), client.clone());
            tasks.push(tokio::spawn(async move {
                let outcome = deliver(&app, &client, delivery).await;
                drop(permit);
                // A slot is free again: look for more.
                app.slo.wake();
                outcome
            }));
        }
        if !full {
            return Ok(tasks);
        }
    }
}

async fn deliver(app: &AppState, client: &reqwest::Client, d: SloDelivery) -> Outcome {
    let outcome = deliver_once(app, client, d).await;
    app.metrics.slo(match outcome {
        Outcome::Delivered => SloOutcome::Delivered,
        Outcome::Skipped => SloOutcome::Skipped,
        Outcome::WillRetry => SloOutcome::Retry,
        Outcome::GaveUp => SloOutcome::GaveUp,
    });
    outcome
}

async fn deliver_once(app: &AppState, client: &reqwest::Client, d: SloDelivery) -> Outcome {
    let result = attempt(app, client, &d).await;
    let now = app.clock.now();
    let recorded = match &result {
        Ok(Some(status)) => {
            tracing::info!(service = %d.service, user = %d.username, session = %d.session_id, status, "single logout delivered");
            app.store
                .delete_slo_delivery(d.id)
                .await
                .map(|()| Outcome::Delivered)
        }
        Ok(None) => app
            .store
            .delete_slo_delivery(d.id)
            .await
            .map(|()| Outcome::Skipped),
        Err(error)
            if now.since(d.created_at) + backoff(d.attempts) > app.settings.slo.retry_for =>
        {
            tracing::warn!(service = %d.service, user = %d.username, attempts = d.attempts, %error, "single logout abandoned");
            app.store
                .delete_slo_delivery(d.id)
                .await
                .map(|()| Outcome::GaveUp)
        }
        Err(error) => {
            let next = now.plus(backoff(d.attempts));
            tracing::warn!(service = %d.service, user = %d.username, attempts = d.attempts, %error, "single logout failed; will retry");
            app.store
                .retry_slo_delivery(d.id, next, error)
                .await
                .map(|()| Outcome::WillRetry)
        }
    };
    recorded.unwrap_or_else(|e| {
        // The lease runs out and the delivery is tried again.
        tracing::warn!(error = %e, service = %d.service, "single logout: recording the outcome failed");
        Outcome::WillRetry
    })
}

/// Sends one logout request: `Ok(Some(status))` when the service answered, `Ok(None)` when it is
/// not to be told by back channel, `Err` with the reason when it should be retried.
async fn attempt(
    app: &AppState,
    client: &reqwest::Client,
    d: &SloDelivery,
) -> Result<Option<u16>, String> {
    if let Some(client_id) = &d.client_id {
        return attempt_backchannel(app, client, d, client_id).await;
    }
    let registry = app.registry().await.map_err(|e| e.to_string())?;
    let Some(service) = registry.find(&d.service) else {
        tracing::debug!(service = %d.service, "single logout skipped: the service is no longer registered");
        return Ok(None);
    };
    if service.logout_type != LogoutType::BackChannel {
        return Ok(None);
    }
    let id = format!("LR-{}", random_base62(&mut rand::rngs::OsRng, 29));
    let xml = logout_request_xml(&id, &d.username, &d.ticket, app.clock.now());
    let response = client
        .post(service.logout_target(&d.service))
        .header(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=UTF-8",
        )
        .body(back_channel_body(&xml))
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    Ok(Some(status.as_u16()))
}

/// Sends one OpenID Connect back-channel logout (Back-Channel Logout 1.0 §2.5): a `logout_token`
/// signed like the client's ID tokens, POSTed to the URI its grant recorded. A 4xx answer means the
/// client refused the token: logged, not retried.
async fn attempt_backchannel(
    app: &AppState,
    client: &reqwest::Client,
    d: &SloDelivery,
    client_id: &str,
) -> Result<Option<u16>, String> {
    let clients = app
        .oidc
        .clients(app.store.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    let Some(registered) = clients.get(client_id) else {
        tracing::debug!(
            client = client_id,
            "back-channel logout skipped: the client is no longer registered"
        );
        return Ok(None);
    };
    let now = app.clock.now();
    let subject = app
        .oidc
        .subject(app.store.as_ref(), &d.username)
        .await
        .map_err(|e| e.to_string())?;
    let jti = random_base62(&mut rand::rngs::OsRng, 32);
    let claims = tessera_protocol::oidc::claims::logout_token(
        app.oidc.issuer(),
        client_id,
        &subject,
        d.session_id.as_str(),
        &jti,
        now,
    );
    let token = app
        .oidc
        .sign(
            app.store.as_ref(),
            registered.signing_alg,
            "logout+jwt",
            &claims,
            now,
        )
        .await
        .map_err(|e| e.to_string())?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &token)
        .finish();
    let response = client
        .post(&d.service)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| describe(&e))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(format!("HTTP {}", status.as_u16()));
    }
    if status.is_client_error() {
        tracing::warn!(
            client = client_id,
            status = status.as_u16(),
            "back-channel logout refused by the client"
        );
    }
    Ok(Some(status.as_u16()))
}

/// A short reason for a failed outbound request, for logs and the delivery queue.
pub fn describe(e: &reqwest::Error) -> String {
    // The innermost cause tells "refused" from "certificate not trusted".
    let mut root: &dyn std::error::Error = e;
    while let Some(source) = root.source() {
        root = source;
    }
    let cause = root.to_string();
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        format!("could not connect: {cause}")
    } else if cause == e.to_string() {
        cause
    } else {
        format!("{e}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let delays: Vec<u64> = (1..=12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(0), Duration::from_secs(1));
    }
}
