import type { BenchContext, BenchOptions } from './context'
import type { FileKind } from './data'

/** One benchmark scenario: a file under bench/scenarios/ exporting one of these. */
export interface Scenario {
	/** Short name for `--only=`, e.g. `download-64k`. */
	readonly id: string
	/** Data files it needs beyond the 64 KiB one. */
	needs?(opts: BenchOptions): FileKind[]
	/** Runs it, recording rows in `ctx`; targets it starts go through `ctx.own`. */
	run(ctx: BenchContext): Promise<void>
}
