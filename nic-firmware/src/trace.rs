//! `TRACE`: the real pipeline over one frame in dry run, reported step by step.
use crate::admin::{params, Context};
use crate::pipeline::trace::Recorder;
use crate::pipeline::{process_frame_traced, Port, Verdict};
use crate::platform::{Function, Platform};
use shared_regs::admin::{AdminCmd, Status};
use shared_regs::entry::{TraceQuery, UPLINK_FUNCTION};
use shared_regs::trace::{report_len, TraceHeader, TraceVerdict};
use shared_regs::Le16;
use zerocopy::IntoBytes;

/// Runs one `TRACE` command; `Ok` carries the report's length.
pub(crate) fn run<P: Platform>(
    ctx: &mut Context<'_, '_, P>,
    cmd: &AdminCmd,
) -> Result<u32, Status> {
    let q: TraceQuery = params(cmd)?;
    let port = match q.port.get() {
        UPLINK_FUNCTION => Port::Uplink,
        vf if vf < ctx.tables.num_vfs() => Port::Vf(vf),
        _ => return Err(Status::BadArgument),
    };
    let len = usize::from(q.frame_len.get());
    let buf_len = usize::try_from(cmd.buf_len.get()).map_err(|_| Status::BadArgument)?;
    if len == 0 || len > buf_len {
        return Err(Status::BadArgument);
    }
    let frame = ctx.scratch.as_deref_mut().ok_or(Status::BadArgument)?;
    let buf = frame.reset(len).ok_or(Status::BadArgument)?;
    let addr = cmd.buf_addr.get();
    ctx.platform
        .dma_read(Function::Pf, addr, buf)
        .map_err(|_| Status::DmaError)?;

    let mut rec = Recorder::default();
    let verdict = process_frame_traced(ctx.tables, port, frame, &mut rec);
    let port_id = |p: Port| match p {
        Port::Vf(vf) => vf,
        Port::Uplink => UPLINK_FUNCTION,
    };
    let (kind, counter, out_port, out) = match verdict {
        Verdict::Drop { port, reason } => {
            (TraceVerdict::Drop, reason as u8, port_id(port), &[][..])
        }
        Verdict::ToVf { vf } => (TraceVerdict::ToVf, 0xFF, vf, frame.data()),
        Verdict::Reply { vf } => (TraceVerdict::Reply, 0xFF, vf, frame.data()),
        // A frame to fragment is reported as the inner frame before fragmentation.
        Verdict::ToUplink | Verdict::Fragment { .. } => {
            (TraceVerdict::ToUplink, 0xFF, UPLINK_FUNCTION, frame.data())
        }
    };
    let steps = rec.steps();
    let total = report_len(steps.len(), out.len());
    if total > buf_len {
        return Err(Status::BufferTooSmall);
    }
    let header = TraceHeader {
        verdict: kind as u8,
        drop_counter: counter,
        port: Le16::new(out_port),
        step_count: u8::try_from(steps.len()).unwrap_or(u8::MAX),
        truncated: u8::from(rec.truncated()),
        frame_len: Le16::new(u16::try_from(out.len()).map_err(|_| Status::BadArgument)?),
    };
    let p = &mut *ctx.platform;
    let mut at = addr;
    for part in [header.as_bytes(), steps.as_bytes(), out] {
        p.dma_write(Function::Pf, at, part)
            .map_err(|_| Status::DmaError)?;
        at = at.wrapping_add(part.len() as u64);
    }
    u32::try_from(total).map_err(|_| Status::BadArgument)
}
