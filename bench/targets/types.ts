import type { HttpRequest } from '../lib/http'

/** A server the bench started and measures. */
export interface RunningTarget {
	/** What users would call it, e.g. `download-gate`, `nginx secure_link`. */
	readonly name: string
	/** What runs it, e.g. `Bun 1.4.5`, `nginx 1.22.1`, `Node v20.20.2`. */
	readonly runtime: string
	/** Processes that serve requests. */
	readonly processes: number
	readonly url: string
	/** Roots of its process trees (each tree is measured whole: parent + workers). */
	readonly pids: readonly number[]
	/** The redis-server it talks to, whose CPU is part of its cost; null for none. */
	readonly redisPid: number | null
	/** Other processes it depends on whose CPU is part of its cost, shown apart, by name (e.g. `{ s3rver: pid }`). */
	readonly backends?: Readonly<Record<string, number>>
	/** Stops every process of it; safe to call twice. */
	stop(): Promise<void>
}

/** A target that serves the files under bench/.data/storage as `/<user>/<file>`. */
export interface FileServer extends RunningTarget {
	/** A GET of `file` of `user` that answers 200 (issuing a token first where one is needed). */
	download(user: string, file: string, opts?: { maxUses?: number }): Promise<HttpRequest>
}

/** A file server with its own tokens: issuance and refusals can be measured. */
export interface TokenServer extends FileServer {
	/** A token request for `file`, with `{user}` in the path for wrk to rotate. */
	issuance(file: string): HttpRequest
	/** A download whose token has a bad signature. */
	forged(user: string, file: string): Promise<HttpRequest>
	/** A download whose token was revoked. */
	revoked(user: string, file: string): Promise<HttpRequest>
}
