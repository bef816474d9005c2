//! The link over real async byte streams (`tokio::io::duplex`, a socat
//! pty pair): what it skips, what it answers, and what it survives.
use super::*;
use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{duplex, DuplexStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_modbus::client::{Client, Context};
use tokio_modbus::client::{Reader, Writer};
use tokio_modbus::slave::{Slave, SlaveContext};
use tokio_modbus::{ExceptionCode, Request, Response};

fn opts(framing: LinkFraming) -> LinkOptions {
    LinkOptions {
        framing,
        request_gap: Duration::ZERO,
        heartbeat: Some(Arc::from(&b"hb"[..])),
    }
}

/// A link on one end of an in-memory pipe, the unit's end beside it.
fn pair(opts: LinkOptions, unit: u8) -> (Link, DuplexStream) {
    let (ours, theirs) = duplex(1024);
    let mut link = Link::new(Box::new(ours), opts);
    link.set_slave(Slave(unit));
    (link, theirs)
}

fn context(opts: LinkOptions, unit: u8) -> (Context, DuplexStream) {
    let (link, theirs) = pair(opts, unit);
    let link: Box<dyn Client> = Box::new(link);
    (Context::from(link), theirs)
}

/// Reads one request from the unit's end and checks it.
async fn request(unit: &mut DuplexStream, want: &[u8]) {
    let mut got = vec![0; want.len()];
    unit.read_exact(&mut got).await.unwrap();
    assert_eq!(hex::encode(&got), hex::encode(want));
}

/// Plays a unit: for each (request, answer) pair, waits for the request
/// and writes the answer.
fn unit_task(
    mut unit: DuplexStream,
    script: Vec<(Vec<u8>, Vec<u8>)>,
) -> tokio::task::JoinHandle<DuplexStream> {
    tokio::spawn(async move {
        for (req, answer) in script {
            request(&mut unit, &req).await;
            unit.write_all(&answer).await.unwrap();
        }
        unit
    })
}

fn read_req(unit: u8, function: u8, addr: u16, n: u16) -> Vec<u8> {
    let [a0, a1] = addr.to_be_bytes();
    let [n0, n1] = n.to_be_bytes();
    rtu::frame(unit, &[function, a0, a1, n0, n1])
}

fn words_reply(unit: u8, function: u8, words: &[u16]) -> Vec<u8> {
    let mut pdu = vec![function, (2 * words.len()) as u8];
    for w in words {
        pdu.extend_from_slice(&w.to_be_bytes());
    }
    rtu::frame(unit, &pdu)
}

/// The call, bounded so that a test that goes wrong fails instead of
/// hanging (time is paused: the bound costs nothing).
async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("the call did not finish")
}

#[tokio::test(start_paused = true)]
async fn reads_of_each_table() {
    let (mut ctx, unit) = context(opts(LinkFraming::Rtu), 0x11);
    let script = vec![
        (
            read_req(0x11, 0x01, 0x0013, 19),
            rtu::frame(0x11, &[0x01, 3, 0xCD, 0x6B, 0x05]),
        ),
        (
            read_req(0x11, 0x02, 0x00C4, 3),
            rtu::frame(0x11, &[0x02, 1, 0b101]),
        ),
        (
            read_req(0x11, 0x03, 0x006B, 3),
            words_reply(0x11, 0x03, &[0x022B, 0x0000, 0x0064]),
        ),
        (
            read_req(0x11, 0x04, 0x0008, 1),
            words_reply(0x11, 0x04, &[0x000A]),
        ),
    ];
    let unit = unit_task(unit, script);
    let coils = within(ctx.read_coils(0x0013, 19)).await.unwrap().unwrap();
    let want: Vec<bool> = [0xCDu8, 0x6B, 0x05]
        .iter()
        .flat_map(|b| (0..8).map(move |i| b & (1 << i) != 0))
        .take(19)
        .collect();
    assert_eq!(coils, want);
    let inputs = within(ctx.read_discrete_inputs(0x00C4, 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inputs, [true, false, true]);
    let holding = within(ctx.read_holding_registers(0x006B, 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holding, [0x022B, 0, 0x64]);
    let input = within(ctx.read_input_registers(0x0008, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(input, [10]);
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn writes_and_their_echoes() {
    let (mut ctx, unit) = context(opts(LinkFraming::Rtu), 3);
    let coil = rtu::frame(3, &[0x05, 0x00, 0xAC, 0xFF, 0x00]);
    let reg = rtu::frame(3, &[0x06, 0x00, 0x01, 0x00, 0x03]);
    // 10 coils 1,0,1,1,0,0,1,1, 1,0 → CD 01.
    let coils_req = rtu::frame(3, &[0x0F, 0x00, 0x13, 0x00, 0x0A, 2, 0xCD, 0x01]);
    let coils_echo = rtu::frame(3, &[0x0F, 0x00, 0x13, 0x00, 0x0A]);
    let regs_req = rtu::frame(
        3,
        &[0x10, 0x00, 0x01, 0x00, 0x02, 4, 0x00, 0x0A, 0x01, 0x02],
    );
    let regs_echo = rtu::frame(3, &[0x10, 0x00, 0x01, 0x00, 0x02]);
    let unit = unit_task(
        unit,
        vec![
            (coil.clone(), coil),
            (reg.clone(), reg),
            (coils_req, coils_echo),
            (regs_req, regs_echo),
        ],
    );
    within(ctx.write_single_coil(0x00AC, true))
        .await
        .unwrap()
        .unwrap();
    within(ctx.write_single_register(0x0001, 3))
        .await
        .unwrap()
        .unwrap();
    let bits = [
        true, false, true, true, false, false, true, true, true, false,
    ];
    within(ctx.write_multiple_coils(0x0013, &bits))
        .await
        .unwrap()
        .unwrap();
    within(ctx.write_multiple_registers(0x0001, &[0x000A, 0x0102]))
        .await
        .unwrap()
        .unwrap();
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_exception_is_the_devices_answer() {
    let (mut ctx, unit) = context(opts(LinkFraming::Rtu), 1);
    let unit = unit_task(
        unit,
        vec![(read_req(1, 0x03, 0x9000, 2), rtu::frame(1, &[0x83, 0x02]))],
    );
    let r = within(ctx.read_holding_registers(0x9000, 2)).await.unwrap();
    assert_eq!(r, Err(ExceptionCode::IllegalDataAddress));
    unit.await.unwrap();
}

/// Runs one read of unit 1's holding register 0 (n = 1) with `before`
/// arriving ahead of the reply; returns the link for its counters.
async fn read_after(before: Vec<u8>, opts: LinkOptions) -> Link {
    let (mut link, unit) = pair(opts, 1);
    let mut answer = before;
    answer.extend(words_reply(1, 0x03, &[0x1234]));
    let unit = unit_task(unit, vec![(read_req(1, 0x03, 0, 1), answer)]);
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
        .await
        .unwrap();
    assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![0x1234])));
    unit.await.unwrap();
    link
}

#[tokio::test(start_paused = true)]
async fn a_valid_frame_of_another_unit_is_skipped() {
    let link = read_after(words_reply(2, 0x03, &[0xBEEF]), opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.skipped_frames, 1);
    assert_eq!(link.counters.skipped_bytes, 0);
}

#[tokio::test(start_paused = true)]
async fn another_masters_request_to_the_same_unit_is_skipped() {
    // 01 03 00 00 00 0A C5 CD
    let link = read_after(read_req(1, 0x03, 0, 10), opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.skipped_frames, 1);
    // Its address high byte equal to the byte count of our reply (2):
    // a reply prefix until the CRC over the reply's length disagrees.
    let link = read_after(read_req(1, 0x03, 0x0200, 1), opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.skipped_frames, 1);
    // And the reply of that unit to that other master, too.
    let mut both = read_req(1, 0x03, 0, 10);
    both.extend(words_reply(1, 0x03, &[7; 10]));
    let link = read_after(both, opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.skipped_frames, 2);
}

#[tokio::test(start_paused = true)]
async fn a_broadcast_write_to_unit_0_is_skipped() {
    let broadcast = rtu::frame(
        0,
        &[0x10, 0x00, 0x00, 0x00, 0x02, 4, 0x07, 0xE9, 0x0C, 0x01],
    );
    let link = read_after(broadcast, opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.skipped_frames, 1);
}

#[tokio::test(start_paused = true)]
async fn noise_is_skipped() {
    // Noise that starts like our reply (unit 1, function 3) included.
    let noise = vec![0x00, 0xFF, 0x01, 0x03, 0x02, 0x55, 0x01, 0x01, 0x03];
    let link = read_after(noise.clone(), opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.skipped_bytes, noise.len() as u64);
    assert_eq!(link.counters.skipped_frames, 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_before_and_between_frames_are_skipped() {
    let mut before = b"hb".to_vec();
    before.extend(words_reply(5, 0x03, &[1]));
    before.extend(b"hb");
    let link = read_after(before, opts(LinkFraming::Rtu)).await;
    assert_eq!(link.counters.heartbeats, 2);
    assert_eq!(link.counters.skipped_frames, 1);
    assert_eq!(link.counters.skipped_bytes, 0);
    // A heartbeat that was already waiting before the request.
    let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
    unit.write_all(b"hb").await.unwrap();
    let unit = unit_task(
        unit,
        vec![(read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[3]))],
    );
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
        .await
        .unwrap();
    assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![3])));
    assert_eq!(link.counters.heartbeats, 1);
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_reply_in_pieces_is_put_together() {
    let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 1);
    let reply = words_reply(1, 0x03, &[1, 2, 3]);
    let unit = tokio::spawn(async move {
        request(&mut unit, &read_req(1, 0x03, 0, 3)).await;
        for b in reply {
            unit.write_all(&[b]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let r = within(ctx.read_holding_registers(0, 3)).await.unwrap();
    assert_eq!(r, Ok(vec![1, 2, 3]));
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_after_a_timeout_does_not_answer_the_next_call() {
    // Late reply arriving after the next request went out.
    let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
    let first = tokio::time::timeout(
        Duration::from_millis(100),
        link.call(Request::ReadHoldingRegisters(0, 1)),
    )
    .await;
    assert!(first.is_err(), "the first call must time out");
    request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
    link.set_slave(Slave(2));
    let mut answers = words_reply(1, 0x03, &[0xDEAD]);
    answers.extend(words_reply(2, 0x03, &[0x0002]));
    let unit = unit_task(unit, vec![(read_req(2, 0x03, 0, 1), answers)]);
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
        .await
        .unwrap();
    assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![2])));
    assert_eq!(link.counters.skipped_frames, 1);
    unit.await.unwrap();

    // Late reply already waiting when the next call starts.
    let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
    let first = tokio::time::timeout(
        Duration::from_millis(100),
        link.call(Request::ReadHoldingRegisters(0, 1)),
    )
    .await;
    assert!(first.is_err(), "the first call must time out");
    request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
    unit.write_all(&words_reply(1, 0x03, &[0xDEAD]))
        .await
        .unwrap();
    link.set_slave(Slave(2));
    let unit = unit_task(
        unit,
        vec![(read_req(2, 0x03, 0, 1), words_reply(2, 0x03, &[0x0002]))],
    );
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
        .await
        .unwrap();
    assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![2])));
    assert_eq!(link.counters.skipped_frames, 1);
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_late_reply_of_the_same_request_is_thrown_away_before_the_next() {
    // Same unit, same request: only the pre-request drain tells the late
    // answer from the fresh one.
    let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
    let first = tokio::time::timeout(
        Duration::from_millis(100),
        link.call(Request::ReadHoldingRegisters(0, 1)),
    )
    .await;
    assert!(first.is_err(), "the first call must time out");
    request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
    unit.write_all(&words_reply(1, 0x03, &[0xDEAD]))
        .await
        .unwrap();
    let unit = unit_task(
        unit,
        vec![(read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[0x0001]))],
    );
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
        .await
        .unwrap();
    assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![1])));
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_duplicated_reply_is_not_the_next_calls_answer() {
    let (mut link, unit) = pair(opts(LinkFraming::Rtu), 1);
    let mut twice = words_reply(1, 0x03, &[1]);
    twice.extend(words_reply(1, 0x03, &[1]));
    let unit = unit_task(
        unit,
        vec![
            (read_req(1, 0x03, 0, 1), twice),
            (read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[2])),
        ],
    );
    for want in [1, 2] {
        let r = within(link.call(Request::ReadHoldingRegisters(0, 1)))
            .await
            .unwrap();
        assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![want])));
    }
    assert_eq!(link.counters.skipped_frames, 1);
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_call_cut_off_mid_reply_leaves_the_link_usable() {
    let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
    let reply = words_reply(1, 0x03, &[9, 9]);
    let first = tokio::time::timeout(Duration::from_millis(100), async {
        let call = link.call(Request::ReadHoldingRegisters(0, 2));
        let unit = async {
            request(&mut unit, &read_req(1, 0x03, 0, 2)).await;
            unit.write_all(&reply[..4]).await.unwrap();
            std::future::pending::<()>().await
        };
        tokio::select! { r = call => Some(r), () = unit => None }
    })
    .await;
    assert!(first.is_err(), "the first call must time out");
    // The rest of the cut-off reply arrives with the next one.
    let mut answers = reply[4..].to_vec();
    answers.extend(words_reply(1, 0x03, &[1, 2]));
    let unit = unit_task(unit, vec![(read_req(1, 0x03, 0, 2), answers)]);
    let r = within(link.call(Request::ReadHoldingRegisters(0, 2)))
        .await
        .unwrap();
    assert_eq!(r, Ok(Response::ReadHoldingRegisters(vec![1, 2])));
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_request_gap_is_kept() {
    let gap = Duration::from_millis(50);
    let mut o = opts(LinkFraming::Rtu);
    o.request_gap = gap;
    let (mut link, mut unit) = pair(o, 1);
    let t0 = Instant::now();
    let unit = tokio::spawn(async move {
        // A just-opened link waits one gap before its first request.
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        assert!(Instant::now() >= t0 + gap, "{:?}", Instant::now() - t0);
        unit.write_all(&words_reply(1, 0x03, &[1])).await.unwrap();
        let t1 = Instant::now();
        // Traffic during the gap starts it again.
        tokio::time::sleep(Duration::from_millis(30)).await;
        unit.write_all(b"hb").await.unwrap();
        let t2 = Instant::now();
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        assert!(Instant::now() >= t2 + gap, "{:?}", Instant::now() - t1);
        unit.write_all(&words_reply(1, 0x03, &[2])).await.unwrap();
    });
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
    assert_eq!(r.unwrap(), Ok(Response::ReadHoldingRegisters(vec![1])));
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
    assert_eq!(r.unwrap(), Ok(Response::ReadHoldingRegisters(vec![2])));
    unit.await.unwrap();
    assert_eq!(link.counters.heartbeats, 1);
}

#[tokio::test(start_paused = true)]
async fn without_a_gap_the_request_goes_at_once() {
    let (mut link, unit) = pair(opts(LinkFraming::Rtu), 1);
    let t0 = Instant::now();
    let unit = unit_task(
        unit,
        vec![(read_req(1, 0x03, 0, 1), words_reply(1, 0x03, &[1]))],
    );
    within(link.call(Request::ReadHoldingRegisters(0, 1)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Instant::now(), t0);
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn too_much_junk_gives_up() {
    let (mut link, mut unit) = pair(opts(LinkFraming::Rtu), 1);
    let unit = tokio::spawn(async move {
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        for _ in 0..10 {
            if unit.write_all(&[0xAA; 512]).await.is_err() {
                break;
            }
        }
        unit
    });
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
    match r {
        Err(tokio_modbus::Error::Transport(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}")
        }
        other => panic!("{other:?}"),
    }
    drop(unit.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn the_end_of_the_stream_is_a_transport_error() {
    let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 1);
    let unit = tokio::spawn(async move {
        request(&mut unit, &read_req(1, 0x03, 0, 1)).await;
        unit.write_all(&[0x01, 0x03]).await.unwrap();
    });
    let r = within(ctx.read_holding_registers(0, 1)).await;
    match r {
        Err(tokio_modbus::Error::Transport(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof)
        }
        other => panic!("{other:?}"),
    }
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn other_functions_are_refused_before_the_bus() {
    let (mut ctx, _unit) = context(opts(LinkFraming::Rtu), 1);
    for r in [
        within(ctx.masked_write_register(0, 0xFF, 0)).await,
        within(ctx.call(Request::ReportServerId))
            .await
            .map(|_| Ok(())),
    ] {
        match r {
            Err(tokio_modbus::Error::Transport(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::Unsupported)
            }
            other => panic!("{other:?}"),
        }
    }
    let r = within(ctx.read_holding_registers(0, 126)).await;
    assert!(
        matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::InvalidInput)
    );
}

#[tokio::test(start_paused = true)]
async fn a_broadcast_write_is_not_answered() {
    let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 0);
    within(ctx.write_single_register(0x0002, 0x0102))
        .await
        .unwrap()
        .unwrap();
    request(&mut unit, &rtu::frame(0, &[0x06, 0x00, 0x02, 0x01, 0x02])).await;
    let r = within(ctx.read_holding_registers(0, 1)).await;
    assert!(
        matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::InvalidInput)
    );
}

#[tokio::test(start_paused = true)]
async fn disconnect_shuts_the_stream_down() {
    let (mut ctx, mut unit) = context(opts(LinkFraming::Rtu), 1);
    ctx.disconnect().await.unwrap();
    let mut b = [0u8; 1];
    assert_eq!(unit.read(&mut b).await.unwrap(), 0);
    let r = within(ctx.read_holding_registers(0, 1)).await;
    assert!(
        matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::NotConnected)
    );
}

fn mbap_words(transaction: u16, unit: u8, function: u8, words: &[u16]) -> Vec<u8> {
    let mut pdu = vec![function, (2 * words.len()) as u8];
    for w in words {
        pdu.extend_from_slice(&w.to_be_bytes());
    }
    mbap::frame(transaction, unit, &pdu)
}

#[tokio::test(start_paused = true)]
async fn mbap_reads_skip_other_transactions_and_heartbeats() {
    let mut o = opts(LinkFraming::Mbap);
    o.heartbeat = Some(Arc::from(&b"www.usr.cn"[..]));
    let (mut link, unit) = pair(o, 5);
    let req = |t: u16| mbap::frame(t, 5, &[0x04, 0x00, 0x10, 0x00, 0x02]);
    // 1: a clean answer. 2: the answer to an older transaction and a
    // heartbeat stuck to the front of the right one. 3: an exception.
    let mut second = mbap_words(1, 5, 0x04, &[0xAAAA, 0xBBBB]);
    second.extend(b"www.usr.cn");
    second.extend(mbap_words(2, 5, 0x04, &[3, 4]));
    let unit = unit_task(
        unit,
        vec![
            (req(1), mbap_words(1, 5, 0x04, &[1, 2])),
            (req(2), second),
            (req(3), mbap::frame(3, 5, &[0x84, 0x0B])),
        ],
    );
    let r = within(link.call(Request::ReadInputRegisters(0x10, 2))).await;
    assert_eq!(r.unwrap(), Ok(Response::ReadInputRegisters(vec![1, 2])));
    let r = within(link.call(Request::ReadInputRegisters(0x10, 2))).await;
    assert_eq!(r.unwrap(), Ok(Response::ReadInputRegisters(vec![3, 4])));
    assert_eq!(link.counters.skipped_frames, 1);
    assert_eq!(link.counters.heartbeats, 1);
    let r = within(link.call(Request::ReadInputRegisters(0x10, 2))).await;
    assert_eq!(r.unwrap(), Err(ExceptionCode::GatewayTargetDevice));
    unit.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn mbap_write_cut_off_mid_frame_fails_the_next_call() {
    // A pipe too small for the request, and nobody reading it.
    let (ours, _theirs) = duplex(4);
    let mut link = Link::new(Box::new(ours), opts(LinkFraming::Mbap));
    let words: Vec<u16> = (0..10).collect();
    let first = tokio::time::timeout(
        Duration::from_millis(100),
        link.call(Request::WriteMultipleRegisters(0, Cow::Borrowed(&words))),
    )
    .await;
    assert!(first.is_err(), "the write must block");
    let r = within(link.call(Request::ReadHoldingRegisters(0, 1))).await;
    assert!(
        matches!(r, Err(tokio_modbus::Error::Transport(e)) if e.kind() == io::ErrorKind::BrokenPipe)
    );
}

struct Rtu1(rtu::Reply);
impl Matcher for Rtu1 {
    fn candidate(&self, at: &[u8]) -> Candidate {
        self.0.candidate(at)
    }
    fn pdu<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        self.0.pdu(frame)
    }
}

#[test]
fn scan_finds_an_exception_after_a_false_start() {
    let m = Rtu1(rtu::Reply {
        unit: 1,
        expect: Expect::Words {
            function: 0x03,
            bytes: 20,
        },
    });
    // 01 03 14 … looks like the start of a 25-byte reply; the exception
    // that follows must not wait for it to complete.
    let mut buf = vec![0x01, 0x03, 0x14, 0x00];
    let exception = rtu::frame(1, &[0x83, 0x04]);
    buf.extend(&exception);
    assert_eq!(scan(&buf, &m), Scan::Found { start: 4, len: 5 });
    assert_eq!(scan(&buf[..6], &m), Scan::Pending { skip: 0 });
    assert_eq!(scan(&[0xFF, 0xFE, 0x01], &m), Scan::Pending { skip: 2 });
    assert_eq!(scan(&[0xFF, 0xFE], &m), Scan::Pending { skip: 2 });
}

#[test]
fn skipped_bytes_are_sorted() {
    let mut junk = b"hb".to_vec();
    junk.extend(rtu::frame(4, &[0x06, 0, 1, 0, 2]));
    junk.extend([0x00, 0x00]);
    junk.extend(b"hb");
    assert_eq!(
        sort_skipped(&junk, LinkFraming::Rtu, b"hb"),
        Skipped {
            frames: 1,
            heartbeats: 2,
            bytes: 2
        }
    );
    assert_eq!(
        sort_skipped(b"hb", LinkFraming::Rtu, b""),
        Skipped {
            frames: 0,
            heartbeats: 0,
            bytes: 2
        }
    );
}

#[test]
fn requests_are_encoded_with_their_replies_shape() {
    let (pdu, e) = encode(&Request::ReadCoils(0x0013, 19)).unwrap();
    assert_eq!(pdu, [0x01, 0x00, 0x13, 0x00, 0x13]);
    assert_eq!(
        e,
        Expect::Bits {
            function: 1,
            bytes: 3
        }
    );
    let (_, e) = encode(&Request::ReadInputRegisters(0, 125)).unwrap();
    assert_eq!(
        e,
        Expect::Words {
            function: 4,
            bytes: 250
        }
    );
    let (pdu, e) = encode(&Request::WriteSingleCoil(0x00AC, false)).unwrap();
    assert_eq!(pdu, [0x05, 0x00, 0xAC, 0x00, 0x00]);
    assert_eq!(
        e,
        Expect::Echo {
            function: 5,
            a: 0xAC,
            b: 0
        }
    );
    for bad in [
        Request::ReadCoils(0, 0),
        Request::ReadDiscreteInputs(0, 2001),
        Request::ReadHoldingRegisters(0, 126),
        Request::WriteMultipleRegisters(0, Cow::Owned(vec![0; 124])),
        Request::WriteMultipleCoils(0, Cow::Owned(vec![])),
    ] {
        assert_eq!(
            encode(&bad).unwrap_err().kind(),
            io::ErrorKind::InvalidInput,
            "{bad:?}"
        );
    }
}
