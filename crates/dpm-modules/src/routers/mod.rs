//! Built-in routers.

pub mod readconnroute;
