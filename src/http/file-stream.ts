import type { RangeReader } from '../storage/types'

// A counted body is a direct stream (Bun's `type: 'direct'`): each chunk is
// written straight to the connection's sink, and a write the socket cannot
// take at once returns a promise that settles when it has, so the loop reads
// the next chunk only then, into the same buffer. Measured with 100 clients
// reading a 1 GiB body as fast as they can (wrk), against the pull stream it
// replaced (fresh chunks, adapting from 64 up to 512 KiB): 37 MiB of
// anonymous memory and 0.94 GB/s instead of 205 MiB and 0.47 GB/s; one client
// alone got as much as before. A chunk of 64 KiB halved throughput, 128 KiB
// did not; a reader the socket keeps waiting drops to a small buffer.
const FAST_CHUNK = 128 * 1024
const SLOW_CHUNK = 16 * 1024
/** A write the socket made us wait longer than this for marks a slow reader. */
const SLOW_WAIT_MS = 20
/** Bodies up to this size are read and handed to the socket in one go. */
export const SINGLE_READ_BYTES = 64 * 1024

/** A paced body's chunks are at most a tenth of a second of its rate, so it flows evenly rather than in bursts. */
const PACE_SLICE_S = 0.1

/** The part of Bun's direct stream controller a counted body writes through. */
interface DirectSink {
	write(chunk: Uint8Array): number | Promise<number>
	close(error?: Error): void
}

/**
 * Sends `length` bytes from `reader` as a response body, one chunk at a
 * time, so memory stays constant and the socket's backpressure paces the
 * source. It never sends more than `length` bytes and ends the response
 * abnormally (a reset, never a short body that looks whole) as soon as the
 * source does (a file that shrank, a bucket that failed). With `rate`, the
 * body is paced to that many bytes per second and reads nothing meanwhile,
 * so a paced client holds no more than a slow one. `onEnd` runs once with the
 * bytes handed to the connection and whether all were; `abort` (the client
 * went away) ends it and cancels the reader.
 */
export function countedStream(
	reader: RangeReader,
	length: number,
	onEnd: (written: number, complete: boolean) => void,
	options: { readonly rate?: number | undefined } = {},
): { stream: ReadableStream<Uint8Array>; abort: () => void } {
	let written = 0
	let finished = false
	const rate = options.rate
	const paceChunk = rate === undefined ? FAST_CHUNK : Math.max(SLOW_CHUNK, Math.floor(rate * PACE_SLICE_S))
	const startedMs = performance.now()
	let wake: (() => void) | null = null
	let timer: ReturnType<typeof setTimeout> | undefined

	const finish = (complete: boolean) => {
		if (finished) return
		finished = true
		clearTimeout(timer)
		wake?.()
		if (!complete) reader.cancel()
		onEnd(written, complete)
	}

	/** Waits until the bytes written so far are due at `rate` (the first chunk goes at once); wakes early on abort. */
	const paced = (burst: number): Promise<void> | null => {
		if (rate === undefined) return null
		const dueMs = startedMs + ((written - Math.min(written, burst)) / rate) * 1000
		const waitMs = dueMs - performance.now()
		if (waitMs <= 1) return null
		return new Promise((resolve) => {
			wake = resolve
			timer = setTimeout(resolve, waitMs)
		})
	}

	async function send(sink: DirectSink): Promise<void> {
		let size = Math.min(length, paceChunk)
		let buffer = Buffer.allocUnsafe(Math.max(1, size))
		while (written < length && !finished) {
			const waiting = paced(paceChunk)
			if (waiting !== null) {
				await waiting
				if (finished) return
			}
			const want = Math.min(size, length - written)
			let chunk: Uint8Array | null
			if (reader.readInto) {
				const n = await reader.readInto(buffer.subarray(0, want))
				chunk = n > 0 ? buffer.subarray(0, n) : null
			} else chunk = await reader.read(want)
			if (finished) return
			// The source says the range is done: it must be, or the promised length is broken.
			if (chunk === null) throw new Error('the source ended before the promised length')
			const sent = sink.write(chunk)
			// Bun's sink takes nothing from a write once the connection is gone (it answers 0), and may do
			// so before the request's abort reaches us: without this the loop wrote the rest of the body
			// into nothing and reported a cut download complete (seen in a small Bun program, not in the suite).
			if (sent === 0) throw new Error('the connection took none of a write: the client is gone')
			if (sent instanceof Promise) {
				const waitedFrom = performance.now()
				await sent
				// A reader the socket keeps waiting holds a small buffer, not a fast reader's.
				if (size > SLOW_CHUNK && performance.now() - waitedFrom > SLOW_WAIT_MS) {
					size = Math.min(size, SLOW_CHUNK)
					buffer = Buffer.allocUnsafe(size)
				}
			}
			if (finished) return
			written += chunk.byteLength
		}
		sink.close()
		finish(true)
	}

	const stream = new ReadableStream<Uint8Array>({
		type: 'direct',
		async pull(controller: DirectSink) {
			try {
				await send(controller)
			} catch (err) {
				const wasFinished = finished
				finish(false)
				// Closing with an error resets the connection: the client sees a failed body, never a whole one.
				if (!wasFinished) controller.close(err instanceof Error ? err : new Error(String(err)))
			}
		},
		cancel() {
			finish(false)
		},
	} as unknown as ConstructorParameters<typeof ReadableStream<Uint8Array>>[0])
	return { stream, abort: () => finish(false) }
}
