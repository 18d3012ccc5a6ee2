// node test/tools/http-hook-schema.ts — writes docs/http-hook.schema.json from
// hooks/http/schema.ts (test/unit/http-hook-schema.test.ts fails when they differ).
import { writeFileSync } from 'node:fs';
import { httpHookJsonSchema } from '../../hooks/http/schema.ts';

writeFileSync(new URL('../../docs/http-hook.schema.json', import.meta.url), `${JSON.stringify(httpHookJsonSchema(), null, 2)}\n`);
