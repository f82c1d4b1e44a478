import { beforeAll, describe, expect, test } from 'bun:test'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytesOf, sha256 } from '../support/helpers'
import { type ServerProcess, startServerProcess } from '../support/server-process'
import { requireTool, run } from '../support/tools'
import { bucketForFile, MiB, type RecordReader, recordReader } from './bucket-fixtures'

// The download clients people use, against the service as deployed
// (`bun src/index.ts`, production) with its files in a bucket: curl as the
// original guide has it, curl and wget resuming a cut download, aria2c with
// eight connections, ffprobe seeking in a video over HTTP. A missing tool
// fails its test (.ci/run installs them: curl, aria2, wget, ffmpeg).

const USER = '123'

const bucket = await bucketForFile()
const { server, proxy } = bucket
let service: ServerProcess
let records: RecordReader
let work: string
const video = randomBytesOf(3 * MiB + 11)
const long = randomBytesOf(40 * MiB + 3)

/** The service's environment with its files in `endpoint`'s bucket. */
async function issue(base: string, file: string, query = ''): Promise<{ token: string; jti: string }> {
	const res = await fetch(`${base}/api/get-download-token/${USER}/${encodeURIComponent(file)}${query}`)
	if (res.status !== 200) throw new Error(`issue: ${res.status} ${await res.text()}`)
	return (await res.json()) as { token: string; jti: string }
}

/** Runs a tool in `cwd`, killed after `ms` (a cut download) when given. */
async function cutShort(argv: string[], cwd: string, ms: number): Promise<number> {
	const proc = Bun.spawn([requireTool(argv[0] ?? ''), ...argv.slice(1)], {
		cwd,
		stdin: 'ignore',
		stdout: 'ignore',
		stderr: 'ignore',
		timeout: ms,
		killSignal: 'SIGKILL',
	})
	return proc.exited
}

/** Runs `argv` until it exits 0, at most `tries` times (a broken body is settled a moment after the cut). */
async function untilSuccess(argv: string[], cwd: string, tries = 30): Promise<{ exitCode: number; attempts: number }> {
	let exitCode = -1
	let attempts = 0
	while (attempts < tries) {
		attempts++
		exitCode = (await run(argv, { cwd })).exitCode
		if (exitCode === 0) break
		await Bun.sleep(100)
	}
	return { exitCode, attempts }
}

const fileHash = async (path: string) => sha256(await Bun.file(path).bytes())
const statusOf = async (url: string, token: string) =>
	(await run(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${token}`, url]))
		.stdout

beforeAll(async () => {
	await server.put(`${USER}/myvideo.mp4`, video)
	await server.put(`${USER}/long.mp4`, long)
	const env = bucket.serviceEnv({
		ALLOW_QUERY_TOKEN: 'true',
		// Bytes written but unread when a rate-limited client is killed sit in socket buffers: on
		// loopback a receive buffer autotunes up to tcp_rmem's maximum (32 MiB here), plus 4 MiB
		// sent. An allowance of the whole object makes the resumes below independent of that; the
		// allowance's own rule is proven in bucket-faults.test.ts.
		RESUME_ALLOWANCE: '64MiB',
	})
	service = await startServerProcess(env)
	records = recordReader(env.REDIS_KEY_PREFIX ?? '')
	work = await mkdtemp(join(tmpdir(), 'dlg-bucket-tools-'))
})
bucket.afterTests(
	async () => expect(await service.stop()).toBe(0),
	() => records.close(),
	() => rm(work, { recursive: true, force: true }),
)

describe('download clients against a bucket', () => {
	test("the original guide's two curl commands save the file under its name with its bytes", async () => {
		const cwd = await mkdtemp(join(work, 'curl-'))
		const issued = await run(['curl', '-s', `${service.url}/api/get-download-token/${USER}/myvideo.mp4?ttl=900`], {
			cwd,
		})
		expect(issued.exitCode).toBe(0)
		const { token, download_url } = JSON.parse(issued.stdout) as { token: string; download_url: string }
		expect(download_url).toBe(`${service.url}/api/download/${USER}/myvideo.mp4`)
		const saved = await run(['curl', '-s', '-H', `Authorization: Bearer ${token}`, '-OJL', download_url], { cwd })
		expect(saved.exitCode).toBe(0)
		expect(await fileHash(join(cwd, 'myvideo.mp4'))).toBe(sha256(video))
	})

	test('curl -C - resumes a cut download on a one-use token; the token is spent after', async () => {
		const cwd = await mkdtemp(join(work, 'curl-resume-'))
		const { token, jti } = await issue(service.url, 'long.mp4', '?max_uses=1')
		const url = `${service.url}/api/download/${USER}/long.mp4`
		const auth = ['-H', `Authorization: Bearer ${token}`]
		await cutShort(['curl', '-s', '--limit-rate', '8M', ...auth, '-o', 'long.mp4', url], cwd, 1500)
		const partial = Bun.file(join(cwd, 'long.mp4')).size
		expect(partial).toBeGreaterThan(0)
		expect(partial).toBeLessThan(long.length)
		const resumed = await untilSuccess(['curl', '-s', '-f', '-C', '-', ...auth, '-o', 'long.mp4', url], cwd)
		expect(resumed.exitCode).toBe(0)
		expect(await fileHash(join(cwd, 'long.mp4'))).toBe(sha256(long))
		expect(await statusOf(url, token)).toBe('401')
		expect((await records.budget(USER, jti)).inFlight).toBe(0)
	}, 30_000)

	test('wget -c resumes a cut download on a one-use token, named by Content-Disposition', async () => {
		const cwd = await mkdtemp(join(work, 'wget-'))
		const { token } = await issue(service.url, 'long.mp4', '?max_uses=1')
		const url = `${service.url}/api/download/${USER}/long.mp4`
		const wget = ['wget', '-q', '--content-disposition', '-c', `--header=Authorization: Bearer ${token}`]
		await cutShort([...wget, '--limit-rate=8m', url], cwd, 1500)
		const partial = Bun.file(join(cwd, 'long.mp4')).size
		expect(partial).toBeGreaterThan(0)
		expect(partial).toBeLessThan(long.length)
		const resumed = await untilSuccess([...wget, url], cwd)
		expect(resumed.exitCode).toBe(0)
		expect(await fileHash(join(cwd, 'long.mp4'))).toBe(sha256(long))
		expect(await statusOf(url, token)).toBe('401')
	}, 30_000)

	test('aria2c -x 8 on a one-use token: the exact bytes, and the budget spent once', async () => {
		const cwd = await mkdtemp(join(work, 'aria2c-'))
		const { token, jti } = await issue(service.url, 'long.mp4', '?max_uses=1')
		const url = `${service.url}/api/download/${USER}/long.mp4`
		const aria = await run(
			[
				'aria2c',
				'-q',
				'-x',
				'8',
				'-s',
				'8',
				'--header',
				`Authorization: Bearer ${token}`,
				'-d',
				cwd,
				'-o',
				'a.mp4',
				url,
			],
			{ cwd },
		)
		expect(aria.exitCode).toBe(0)
		expect(await fileHash(join(cwd, 'a.mp4'))).toBe(sha256(long))
		expect(await records.budget(USER, jti)).toMatchObject({ left: 0, inFlight: 0 })
		expect(await statusOf(url, token)).toBe('401')
	}, 30_000)

	test('ffprobe reads a real MP4 over HTTP and seeks in it with a Range the bucket sees (token in the query, or a header)', async () => {
		const mp4 = join(work, 'clip.mp4')
		const made = await run([
			'ffmpeg',
			'-v',
			'error',
			'-f',
			'lavfi',
			'-i',
			// Noise, so the file is a few MiB and a seek to second 7 lands far past what the first read buffers.
			'testsrc=duration=10:size=320x180:rate=25,noise=alls=40:allf=t',
			'-preset',
			'ultrafast',
			'-g',
			'25',
			'-movflags',
			'+faststart',
			mp4,
		])
		expect(made.stderr).toBe('')
		expect(made.exitCode).toBe(0)
		await server.put(`${USER}/clip.mp4`, Bun.file(mp4))
		const size = Bun.file(mp4).size
		const { token } = await issue(service.url, 'clip.mp4')
		const url = `${service.url}/api/download/${USER}/clip.mp4`

		const from = proxy.requests.length
		// -read_intervals is ffprobe's seek: read one frame from second 7 on.
		const seek = await run([
			'ffprobe',
			'-v',
			'error',
			'-read_intervals',
			'7%+#1',
			'-show_entries',
			'frame=pts_time',
			'-of',
			'csv=p=0',
			`${url}?token=${token}`,
		])
		expect({ exitCode: seek.exitCode, stderr: seek.stderr, frames: seek.stdout.trim() }).toEqual({
			exitCode: 0,
			stderr: '',
			frames: '7.000000',
		})
		const gets = proxy.requests.slice(from).filter((r) => r.method === 'GET' && r.path.endsWith('/clip.mp4'))
		const starts = gets.map((r) => Number(/^bytes=(\d+)-/.exec(r.range ?? '')?.[1] ?? Number.NaN))
		// The first read from byte 0, then the seek: a read from inside the file, not from its start.
		expect(starts[0]).toBe(0)
		expect(starts.slice(1).some((start) => start > 0 && start < size)).toBe(true)

		const probe = await run([
			'ffprobe',
			'-v',
			'error',
			'-headers',
			`Authorization: Bearer ${token}\r\n`,
			'-show_entries',
			'format=duration:stream=codec_name',
			'-of',
			'csv=p=0',
			url,
		])
		expect({ exitCode: probe.exitCode, out: probe.stdout.trim().split('\n') }).toEqual({
			exitCode: 0,
			out: ['h264', '10.000000'],
		})
	}, 30_000)
})

describe('S3_REDIRECT=unlimited, as a client follows it', () => {
	test('curl -OJL follows the 302 to the presigned URL and saves the file under its name with its bytes', async () => {
		const redirecting = await startServerProcess(bucket.serviceEnv({ S3_REDIRECT: 'unlimited' }, server.endpoint))
		try {
			const cwd = await mkdtemp(join(work, 'redirect-'))
			const { token } = await issue(redirecting.url, 'myvideo.mp4')
			const url = `${redirecting.url}/api/download/${USER}/myvideo.mp4`
			const head = await run([
				'curl',
				'-s',
				'-o',
				'/dev/null',
				'-w',
				'%{http_code} %{redirect_url}',
				...['-H', `Authorization: Bearer ${token}`],
				url,
			])
			const [status, location] = head.stdout.split(' ')
			expect(status).toBe('302')
			expect(location?.startsWith(`${server.endpoint}/`)).toBe(true)
			const saved = await run(['curl', '-s', '-H', `Authorization: Bearer ${token}`, '-OJL', url], { cwd })
			expect(saved.exitCode).toBe(0)
			expect(await fileHash(join(cwd, 'myvideo.mp4'))).toBe(sha256(video))
		} finally {
			expect(await redirecting.stop()).toBe(0)
		}
	}, 30_000)
})
