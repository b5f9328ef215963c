// The browser protocol of docs/protocol.md: one frame per binary WebSocket message,
// [protocol u8][length u32 BE][payload]; protocol 0 = JSON control, 1 = terminal bytes.

export const CONTROL = 0;
export const SSH = 1;

export type Control =
  | { type: 'heartbeat' }
  | { type: 'ok'; message?: string | null; session_id?: string | null }
  | { type: 'error'; kind: 'generic' | 'requires_password'; message: string }
  | { type: 'tunnel_closed'; reason?: string | null; exit_status?: number | null }
  | { type: string; [key: string]: unknown };

export type Frame = { kind: 'control'; msg: Control } | { kind: 'data'; data: Uint8Array };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode(protocol: number, payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + payload.length);
  frame[0] = protocol;
  new DataView(frame.buffer).setUint32(1, payload.length);
  frame.set(payload, 5);
  return frame;
}

export function control(msg: Record<string, unknown>): Uint8Array {
  return encode(CONTROL, encoder.encode(JSON.stringify(msg)));
}

export function data(text: string): Uint8Array {
  return encode(SSH, encoder.encode(text));
}

export function decode(buf: ArrayBuffer): Frame {
  const bytes = new Uint8Array(buf);
  if (bytes.length < 5) throw new Error('short frame');
  const len = new DataView(buf).getUint32(1);
  if (len !== bytes.length - 5) throw new Error('frame length mismatch');
  const payload = bytes.subarray(5);
  if (bytes[0] === CONTROL) return { kind: 'control', msg: JSON.parse(decoder.decode(payload)) };
  if (bytes[0] === SSH) return { kind: 'data', data: payload };
  throw new Error(`unknown protocol ${bytes[0]}`);
}
