// Asks a Pwned Passwords server through the npm `hibp` package, as an application would.
// stdin: {"baseUrl": "...", "addPadding": bool, "passwords": [...], "prefixes": [...]}
// stdout: {"counts": {password: n}, "rangeSizes": {prefix: lines}}
// Passwords come on stdin, never argv. Any failure of the package exits non-zero.
import { pwnedPassword, pwnedPasswordRange } from "hibp";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { baseUrl, addPadding, passwords, prefixes } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const options = { baseUrl, addPadding, timeoutMs: 10000 };

const counts = {};
for (const password of passwords) counts[password] = await pwnedPassword(password, options);
const rangeSizes = {};
for (const prefix of prefixes) {
  rangeSizes[prefix] = Object.keys(await pwnedPasswordRange(prefix, options)).length;
}
process.stdout.write(JSON.stringify({ counts, rangeSizes }));
