//! Built-in routers: `readconnroute` (a server per session) and `readwritesplit` (a
//! server per statement).

pub mod readconnroute;
pub mod readwritesplit;
