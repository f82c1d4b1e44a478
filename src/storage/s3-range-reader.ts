import { StorageUnavailableError } from '../errors'
import { bucketTimeout, requestFailure } from './s3-errors'
import type { RangeReader } from './types'

/** The part of a response body's reader the range reader uses. */
interface BodyReader {
	read(): Promise<{ done: boolean; value?: Uint8Array }>
	cancel(reason?: unknown): Promise<void>
}

/**
 * Bytes of one GET answer's body, pulled from the socket only as they are
 * asked for (Bun's fetch body is read on demand, so a slow client holds the
 * bucket's connection back rather than filling memory). Only time spent
 * waiting on the bucket inside `read` counts against `timeoutMs`.
 */
export class BucketRangeReader implements RangeReader {
	#left: number
	#surplus: boolean
	#rest: Uint8Array | null = null
	#finished: Error | null = null

	/**
	 * `wanted` bytes are read from a body of `answered` bytes that starts with
	 * them (a server may answer a wider range than asked: RFC 9110 §14.2 lets
	 * it, and s3rver answers `bytes=0-0` with the whole object); the rest is
	 * never read: the connection is closed once the wanted bytes are in.
	 */
	constructor(
		private readonly body: BodyReader,
		private readonly abort: AbortController,
		wanted: number,
		answered: number,
		private readonly timeoutMs: number,
		/** What was asked (`GET <key> bytes=…`), for the errors. */
		private readonly request: string,
	) {
		this.#left = wanted
		this.#surplus = answered > wanted
	}

	async read(max: number): Promise<Uint8Array | null> {
		if (!(max >= 1)) throw new RangeError(`read(${max}): at least one byte must be asked for`)
		if (this.#finished) throw this.#finished
		if (this.#rest === null && this.#left === 0) return null
		const chunk = this.#rest ?? (await this.#next())
		if (chunk.length <= max) {
			this.#rest = null
			return chunk
		}
		this.#rest = chunk.subarray(max)
		return chunk.subarray(0, max)
	}

	cancel(): void {
		if (this.#finished) return
		this.#finish(new Error('the read was cancelled'))
	}

	/** The next non-empty chunk from the network, waiting at most the timeout for it. */
	async #next(): Promise<Uint8Array> {
		const timer = setTimeout(() => this.abort.abort(bucketTimeout(this.timeoutMs)), this.timeoutMs)
		try {
			for (;;) {
				const { done, value } = await this.body.read()
				if (done || value === undefined) throw new Error(`the bucket ended the body ${this.#left} bytes early`)
				if (value.length === 0) continue
				const wanted = value.length > this.#left ? value.subarray(0, this.#left) : value
				this.#left -= wanted.length
				if (this.#left === 0 && this.#surplus) this.#finish(null)
				return wanted
			}
		} catch (err) {
			// A read that was waiting when the reader was cancelled ends with the cancellation.
			throw this.#finished ?? this.#finish(new StorageUnavailableError(requestFailure(err, this.request)))
		} finally {
			clearTimeout(timer)
		}
	}

	/**
	 * Aborts the request, which closes its connection whatever the runtime does
	 * with a cancelled body (a client may drain one to reuse the connection).
	 * `null`: all wanted bytes are in and the rest of a wider answer is dropped.
	 */
	#finish<E extends Error | null>(reason: E): E {
		if (reason) {
			this.#finished = reason
			this.#rest = null
		}
		const why = reason ?? new Error('the rest of the answer is not wanted')
		this.abort.abort(why)
		this.body.cancel(why).catch(() => {})
		return reason
	}
}

/** The reader of an empty range: nothing to ask the bucket for. */
export const EMPTY_RANGE_READER: RangeReader = { read: async () => null, cancel() {} }
