import { describe, expect, test } from 'bun:test'
import { CONFIG_DESCRIPTIONS, KNOWN_ENV_VARS } from '../src/config'

// The README is part of the contract: its configuration table must say what
// the schema says, and its quick start must name commands that exist.

const readme = await Bun.file(new URL('../README.md', import.meta.url)).text()
const packageJson = (await Bun.file(new URL('../package.json', import.meta.url)).json()) as {
	scripts: Record<string, string>
}

/** `| \`NAME\` | default | meaning |` rows of the configuration table, in order. */
const configRows = [...readme.matchAll(/^\| `([A-Z][A-Z0-9_]*)` \| (.*?) \| (.*) \|$/gm)].map(
	([, name, , meaning]) => ({
		name: name ?? '',
		meaning: meaning ?? '',
	}),
)

describe('README', () => {
	test('the configuration table lists every variable of the schema once, in its order, and no other', () => {
		expect(configRows.map((r) => r.name)).toEqual([...KNOWN_ENV_VARS])
	})

	test.each([...KNOWN_ENV_VARS])('%s: the table says what the schema says', (name) => {
		expect(configRows.find((r) => r.name === name)?.meaning).toBe(CONFIG_DESCRIPTIONS[name])
	})

	test('the quick start names scripts package.json has', () => {
		const quickStart = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('## Configuration'))
		const scripts = [...quickStart.matchAll(/bun run ([a-z]+)/g)].map(([, script]) => script ?? '')
		expect(scripts).toContain('start')
		expect(scripts).toContain('test')
		for (const script of scripts) expect(Object.keys(packageJson.scripts)).toContain(script)
	})
})
