//! Codec bugs found by the property tests and fuzzing, each as the smallest input that shows
//! it. These fail until the codec is fixed (see the helper report for the suggested fixes).

use bytes::{Bytes, BytesMut};
use switchyard_esl::codec::{Command, CommandDecoder, EslCodec, EventSet, Message, Reply, SendMsg};

fn through_the_switch(c: &Command) -> Command {
    let mut buf = BytesMut::from(&c.to_bytes().unwrap()[..]);
    let frame = CommandDecoder::default().decode(&mut buf).unwrap().unwrap();
    Command::parse(&frame).unwrap()
}

/// `Command::parse` reads command headers with `Headers::get_str`, which percent-decodes, but
/// clients send them raw and FreeSWITCH does not decode them (CommandFrame's own doc says
/// so). An application argument containing `%41` reaches the fake switch as `A`.
#[test]
fn command_header_values_are_not_percent_decoded() {
    let c = Command::SendMsg {
        uuid: None,
        msg: SendMsg::execute("set", Some("discount=100%25".to_owned())),
    };
    assert_eq!(through_the_switch(&c), c);

    let c = Command::BgApi {
        command: "status".into(),
        job_uuid: Some("job%41".into()),
    };
    assert_eq!(through_the_switch(&c), c);
}

/// A `command/reply` built by the switch side is written raw (`Reply-Text: -ERR 100%25`) but
/// read back percent-decoded, so the client sees a different text than was sent.
#[test]
fn reply_text_survives_encode_and_decode() {
    let sent = Reply::new("-ERR no such file /tmp/a%20b.wav");
    let mut wire = BytesMut::new();
    Message::CommandReply(sent.clone()).encode(&mut wire);
    let Some(Message::CommandReply(got)) = EslCodec::default().decode_message(&mut wire).unwrap()
    else {
        panic!("not a reply");
    };
    assert_eq!(got.text(), sent.text());
}

/// `filter delete x` is the delete command, so `Filter { header: "delete" }` cannot be sent as
/// asked; the encoder should refuse it like any other unsendable command.
#[test]
fn filter_on_a_header_called_delete_is_refused() {
    let c = Command::Filter {
        header: "delete".into(),
        value: "x".into(),
    };
    if c.to_bytes().is_ok() {
        assert_eq!(through_the_switch(&c), c);
    }
}

/// `sendevent` header names are checked with `check_word`, which lets a `:` through: the name
/// `a:b` is sent as the header `a` with value `b: v`.
#[test]
fn sendevent_header_name_with_a_colon_is_refused() {
    let c = Command::SendEvent {
        name: "CUSTOM".into(),
        headers: vec![("a:b".into(), "v".into())],
        body: Some(Bytes::from_static(b"x")),
    };
    if c.to_bytes().is_ok() {
        assert_eq!(through_the_switch(&c), c);
    }
}

/// A subclass spelled `CUSTOM` passes `check_events` but is read back as the marker, not as a
/// subclass.
#[test]
fn subclass_called_custom_is_refused() {
    let c = Command::Event {
        format: switchyard_esl::EventFormat::Plain,
        events: EventSet {
            names: vec!["HEARTBEAT".into()],
            subclasses: vec!["custom".into()],
        },
    };
    if c.to_bytes().is_ok() {
        assert_eq!(through_the_switch(&c), c);
    }
}
