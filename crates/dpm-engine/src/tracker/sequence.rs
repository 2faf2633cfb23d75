//! Sequence ids: the id of every frame written to the connection. A frame written after
//! one received continues the received frame's id; a command written to a server
//! restarts at 0; a response written to a client starts one past the last frame of its
//! command (pipelined commands do not disturb the response being written); continuation
//! frames take the next id like any frame.
//!
//! It must not classify packets or decide where a response ends (it reads the grammar's
//! [`Step`] and the [`Reply`] the grammar carries for each queued command), nor name
//! events. It never allocates and never panics.

use super::grammar::Step;
use super::PacketKind;

/// Where the response to one queued command starts; carried by the grammar's queue.
#[derive(Clone, Copy, Debug)]
pub(super) struct Reply {
    /// A packet of the response was already written to the client.
    started: bool,
    /// Sequence id of the response's first packet: one past the command's last frame.
    first: u8,
}

impl Reply {
    /// A packet of the response was already written to the client.
    pub(super) fn started(&self) -> bool {
        self.started
    }
}

impl Default for Reply {
    fn default() -> Reply {
        Reply {
            started: false,
            first: 1,
        }
    }
}

/// The sequence id state of one connection.
#[derive(Debug, Default)]
pub(super) struct Sequence {
    /// Sequence id for the next frame written to this connection.
    tx: u8,
    /// The packet being received is a command awaiting a response (its last frame's
    /// sequence id decides where the response's sequence ids start).
    rx_command: bool,
    /// The packet being received is a pipelined command: the response to an earlier
    /// command may be being written, whose ids none of its frames may disturb.
    rx_pipelined: bool,
}

impl Sequence {
    /// Takes the id of the next frame written.
    pub(super) fn next(&mut self) -> u8 {
        let seq = self.tx;
        self.tx = seq.wrapping_add(1);
        seq
    }

    /// The first frame of a server packet was received with id `seq`.
    pub(super) fn received_server_packet(&mut self, seq: u8) {
        self.tx = seq.wrapping_add(1);
    }

    /// The first frame of a client packet was received with id `seq`; `last` is the reply
    /// of the command queued last.
    pub(super) fn received_client_packet(
        &mut self,
        seq: u8,
        step: &Step,
        last: Option<&mut Reply>,
    ) {
        self.rx_command = step.queued;
        self.rx_pipelined = step.pipelined;
        self.note_command_seq(seq, last);
        if !step.pipelined {
            self.tx = seq.wrapping_add(1);
        }
    }

    /// A continuation frame was received with id `seq`.
    pub(super) fn received_continuation(&mut self, seq: u8, last: Option<&mut Reply>) {
        self.note_command_seq(seq, last);
        if !self.rx_pipelined {
            self.tx = seq.wrapping_add(1);
        }
    }

    /// A client packet is about to be written to a server: commands restart at 0.
    pub(super) fn sending_client_packet(&mut self, step: &Step) {
        if matches!(step.kind, PacketKind::Command(_)) {
            self.tx = 0;
        }
    }

    /// A server packet is about to be written to a client; `head` is the reply of the
    /// command being answered: its first packet starts at the reply's id.
    pub(super) fn sending_server_packet(&mut self, head: Option<&mut Reply>) {
        if let Some(head) = head {
            if !head.started {
                head.started = true;
                self.tx = head.first;
            }
        }
    }

    /// Remembers where the response to the command being received must start.
    fn note_command_seq(&mut self, seq: u8, last: Option<&mut Reply>) {
        if self.rx_command {
            if let Some(last) = last {
                last.first = seq.wrapping_add(1);
            }
        }
    }
}
