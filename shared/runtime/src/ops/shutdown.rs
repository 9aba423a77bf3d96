//! Turning SIGTERM / SIGINT into a cancellation token.

use tokio_util::sync::CancellationToken;

/// A token cancelled on the first SIGTERM or SIGINT (Ctrl-C). Must be called inside a tokio
/// runtime. If the signal handlers cannot be installed the token is never cancelled by a signal
/// and a warning is logged.
pub fn shutdown_token_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        match signal {
            Ok(name) => tracing::info!(signal = name, "shutdown requested"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for shutdown signals");
                return;
            }
        }
        cancel.cancel();
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => Ok("SIGTERM"),
        _ = int.recv() => Ok("SIGINT"),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await?;
    Ok("ctrl-c")
}
