//! The seed's txn class for a raw TCP connection: `txn:req_channel()` /
//! `txn:res_channel()` (and the older names `get_req_buf` / `get_res_buf`), private data
//! (`get_priv`, `set_priv`), and the two ways to end (`close`: at once; `finish`: after
//! the waiting response data went out). Both end the running action
//! ([`crate::errors::ActionEnded`]). The same class serves a statement of a MySQL
//! session (`crate::services::lua_action`): there the client has no socket, and what the
//! channels hold when the action ends decides the statement's fate.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use mlua::{UserData, UserDataMethods, UserDataRef, Value};

use super::channel::{Channel, ChannelObject, Client, Side};
use crate::contexts::may_wait;
use crate::errors::ActionEnded;

/// One raw TCP connection served by an action.
pub struct Txn {
    pub client: Rc<Client>,
    pub req: Rc<Channel>,
    pub res: Rc<Channel>,
    /// `set_priv`'s value (`nil` until set); a MySQL session's lasts for the session.
    private: Rc<RefCell<Value>>,
    /// How the action ended the transaction, if it did.
    pub ending: Cell<Option<Ending>>,
}

/// How an action ended its transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `txn:finish()`.
    Finished,
    /// `txn:close()`.
    Closed,
}

impl Txn {
    pub fn new(client: Rc<Client>, private: Rc<RefCell<Value>>) -> Rc<Txn> {
        Rc::new(Txn {
            req: Channel::new(client.clone(), Side::Request),
            res: Channel::new(client.clone(), Side::Response),
            client,
            private,
            ending: Cell::new(None),
        })
    }

    /// After the action returned: what the response still holds goes to the client,
    /// then the connection ends. Bounded, so a client that never reads cannot keep the
    /// connection (and its task) forever.
    pub async fn end(&self) {
        if !self.client.is_closed() {
            let flushed = tokio::time::timeout(END_FLUSH, self.res.flush_all()).await;
            if flushed.is_err() {
                tracing::debug!("tcp service: a client did not read its answer in time");
            }
        }
        self.client.end();
    }
}

/// How long an ended action's last response data may take to reach the client.
const END_FLUSH: std::time::Duration = std::time::Duration::from_secs(10);

/// A script's handle on a [`Txn`].
pub struct TxnObject(pub Rc<Txn>);

fn channel(txn: &Txn, side: Side) -> ChannelObject {
    ChannelObject(match side {
        Side::Request => txn.req.clone(),
        Side::Response => txn.res.clone(),
    })
}

impl UserData for TxnObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        for (name, side) in [
            ("req_channel", Side::Request),
            ("get_req_buf", Side::Request),
            ("res_channel", Side::Response),
            ("get_res_buf", Side::Response),
        ] {
            methods.add_method(name, move |_, this, ()| Ok(channel(&this.0, side)));
        }
        methods.add_method("get_priv", |_, this, ()| {
            Ok(this.0.private.borrow().clone())
        });
        methods.add_method("set_priv", |_, this, value: Value| {
            *this.0.private.borrow_mut() = value;
            Ok(())
        });
        methods.add_method("close", |_, this, ()| -> mlua::Result<()> {
            this.0.ending.set(Some(Ending::Closed));
            this.0.client.close();
            Err(mlua::Error::external(ActionEnded))
        });
        methods.add_async_method(
            "finish",
            |lua, this: UserDataRef<TxnObject>, ()| async move {
                let txn = this.0.clone();
                txn.ending.set(Some(Ending::Finished));
                if txn.client.has_socket() {
                    let _wait = may_wait(&lua, "txn:finish")?;
                    txn.end().await;
                } else {
                    // A statement: its answer is made from the response when the action
                    // returns; nothing more may change it.
                    txn.client.end();
                }
                Err::<(), _>(mlua::Error::external(ActionEnded))
            },
        );
    }
}
