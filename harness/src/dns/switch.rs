//! The served zones as they stand now, replaceable while the server runs.
//!
//! A timeline step edits records, faults or MX preferences between two delivery attempts.
//! The world re-signs the edited zones (fixed keys and signature times keep that
//! deterministic) and publishes the result here; queries already being answered finish
//! against the zones they started with, the next query sees the new ones. This is what a
//! zone reload with a new serial does on a real authoritative server (RFC 1996 is what
//! would tell secondaries; the world has none).

use std::sync::{Arc, RwLock};

use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};

use super::handler::WorldHandler;
use super::log::QueryLog;
use super::world::SignedWorld;

/// The request handler the server runs; clones publish into the same server.
#[derive(Clone)]
pub struct ZoneSwitch {
    current: Arc<RwLock<Arc<WorldHandler>>>,
    log: QueryLog,
}

impl ZoneSwitch {
    pub fn new(world: &SignedWorld, log: QueryLog) -> ZoneSwitch {
        ZoneSwitch {
            current: Arc::new(RwLock::new(Arc::new(WorldHandler::new(world, log.clone())))),
            log,
        }
    }

    /// Serve `world` from the next query on; the query log carries on.
    pub fn publish(&self, world: &SignedWorld) {
        let next = Arc::new(WorldHandler::new(world, self.log.clone()));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    fn handler(&self) -> Arc<WorldHandler> {
        // A writer only swaps an Arc, so a poisoned lock still holds a whole value.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneSwitch {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, response_handle: R) -> ResponseInfo {
        let handler = self.handler();
        handler.handle_request::<R, T>(request, response_handle).await
    }
}
