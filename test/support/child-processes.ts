import type { Subprocess } from 'bun'

// Every process a test starts (service, redis-server, topology nodes), until it
// has exited. A test that fails or times out before stopping what it started
// must not leave it running (stray servers were found alive an hour after such
// a run): they are all SIGKILLed when the test process ends, however it ends.
const running = new Set<Subprocess>()

/** Kills every tracked process still running. */
export function killAllChildren(): void {
	for (const child of running) {
		// A SIGSTOPped child still dies of SIGKILL; nothing to thaw.
		child.kill('SIGKILL')
	}
	running.clear()
}

process.on('exit', killAllChildren)
for (const [signal, code] of [
	['SIGINT', 130],
	['SIGTERM', 143],
	['SIGHUP', 129],
] as const)
	process.once(signal, () => {
		killAllChildren()
		process.exit(code)
	})

/** Tracks `child` until it exits; returns it. */
export function tracked<T extends Subprocess>(child: T): T {
	running.add(child)
	void child.exited.then(() => running.delete(child))
	return child
}
