//! `dpm.new_timer()`: repeating timers (reference §7.12) whose callbacks run as
//! coroutines on the worker. Unlike the original, `cancel` is idempotent and legal inside
//! the timer's own callback, a cancelled timer can be scheduled again, and packets wired
//! from a timer callback are flushed at once (writes never wait for a read event).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use mlua::{AnyUserData, Function, MultiValue, UserData, UserDataMethods, Value};

use crate::errors::raise;
use crate::host::Host;

/// The `dpm.timer` userdata.
pub struct TimerObject {
    host: Rc<Host>,
    /// Bumped by every schedule and cancel; a running loop stops when it changes.
    generation: Rc<Cell<u64>>,
    scheduled: Rc<Cell<bool>>,
}

impl TimerObject {
    /// A new, unscheduled timer.
    pub fn new(host: Rc<Host>) -> TimerObject {
        TimerObject {
            host,
            generation: Rc::new(Cell::new(0)),
            scheduled: Rc::new(Cell::new(false)),
        }
    }

    fn cancel(&self) {
        self.generation.set(self.generation.get() + 1);
        self.scheduled.set(false);
    }
}

impl UserData for TimerObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function("schedule", |lua, args: MultiValue| {
            let args: Vec<Value> = args.into_iter().collect();
            if args.len() != 5 {
                return Err(raise(lua, "Wrong number of arguments"));
            }
            let Value::UserData(ud) = &args[0] else {
                return Err(raise(
                    lua,
                    "schedule must be called as timer:schedule(sec, msec, fn, arg)",
                ));
            };
            let sec = lua_int(lua, &args[1], "seconds")?;
            let msec = lua_int(lua, &args[2], "milliseconds")?;
            let Value::Function(func) = args[3].clone() else {
                return Err(raise(lua, "Callback argument must be a function"));
            };
            let arg = args[4].clone();
            let this = ud.borrow::<TimerObject>()?;
            if this.scheduled.get() {
                return Err(raise(lua, "Must cancel timer before rescheduling"));
            }
            this.cancel();
            this.scheduled.set(true);
            let interval = Duration::from_millis((sec.max(0) as u64) * 1000 + msec.max(0) as u64)
                .max(Duration::from_millis(1));
            spawn_loop(
                this.host.clone(),
                ud.clone(),
                this.generation.clone(),
                this.scheduled.clone(),
                interval,
                func,
                arg,
            );
            Ok(())
        });
        methods.add_method("cancel", |_, this, ()| {
            this.cancel();
            Ok(())
        });
    }

    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field("__name", "dpm.timer");
    }
}

fn lua_int(lua: &mlua::Lua, v: &Value, what: &str) -> mlua::Result<i64> {
    match v {
        Value::Integer(n) => Ok(*n),
        Value::Number(n) if n.fract() == 0.0 => Ok(*n as i64),
        _ => Err(raise(lua, format!("timer {what} must be an integer"))),
    }
}

/// The timer's loop. It holds the timer object, so a scheduled timer stays alive even
/// when the script dropped its reference (as the original's self-reference did).
fn spawn_loop(
    host: Rc<Host>,
    timer: AnyUserData,
    generation: Rc<Cell<u64>>,
    scheduled: Rc<Cell<bool>>,
    interval: Duration,
    func: Function,
    arg: Value,
) {
    let mine = generation.get();
    // A timer goes on across a reload (its state's sessions may need it) and stops when
    // its state retires.
    let h = host.clone();
    h.spawn_until(crate::host::Phase::Retired, async move {
        if !host.until_started().await {
            return;
        }
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if generation.get() != mine {
                return;
            }
            let result = if arg.is_nil() {
                host.call_as(func.clone(), "cancelling timer", timer.clone())
                    .await
            } else {
                host.call_as(
                    func.clone(),
                    "cancelling timer",
                    (timer.clone(), arg.clone()),
                )
                .await
            };
            if result.is_err() && generation.get() == mine {
                generation.set(mine + 1);
                scheduled.set(false);
                return;
            }
        }
    });
}
