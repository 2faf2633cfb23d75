//! A request's classification, computed once and kept on the request (its annotation),
//! so that every filter and the router that asks gets the same one for free.

use std::rc::Rc;

use dpm_engine::pipeline::Request;

use super::{classify, Classification};

/// The classification of a COM_QUERY or COM_STMT_PREPARE request (None for other
/// commands), computed on first use.
pub fn cached_classification(request: &Request) -> Option<Rc<Classification>> {
    let cached = request
        .annotation
        .borrow()
        .clone()
        .and_then(|a| a.downcast::<Classification>().ok());
    if cached.is_some() {
        return cached;
    }
    let c = Rc::new(classify(request.sql()?));
    *request.annotation.borrow_mut() = Some(c.clone());
    Some(c)
}
