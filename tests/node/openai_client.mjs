// The official openai client library (npm "openai") pointed at a running wersa-server, unchanged:
// the model list, a completion with logprobs, the same completion streamed (the same text), and
// errors as the library's typed exceptions. Usage: node openai_client.mjs BASE_URL API_KEY.
// Exits 1 with one line per failed check.
import OpenAI from "openai";

const [baseURL, apiKey] = process.argv.slice(2);
const client = new OpenAI({ baseURL: baseURL + "/v1", apiKey, maxRetries: 0 });
let failed = 0;
function check(ok, what) {
  if (!ok) {
    console.error("FAILED: " + what);
    failed++;
  }
}

const models = await client.models.list();
check(models.data.length === 1 && models.data[0].object === "model", "models.list: " + JSON.stringify(models.data));
const model = models.data[0].id;

const req = { model, prompt: "It was a dark and stormy night", max_tokens: 16, temperature: 0 };
const whole = await client.completions.create({ ...req, logprobs: 2 });
const choice = whole.choices[0];
check(whole.object === "text_completion", "object: " + whole.object);
check(whole.usage.completion_tokens >= 1 && whole.usage.completion_tokens <= 16, "usage: " + JSON.stringify(whole.usage));
check(whole.usage.total_tokens === whole.usage.prompt_tokens + whole.usage.completion_tokens, "total_tokens");
check(["stop", "length"].includes(choice.finish_reason), "finish_reason: " + choice.finish_reason);
const lp = choice.logprobs;
check(lp.tokens.length === lp.token_logprobs.length && lp.tokens.length === lp.top_logprobs.length, "logprobs arrays");
check(lp.token_logprobs.every((x) => x <= 0), "log-probabilities <= 0: " + lp.token_logprobs);
check(lp.tokens.join("") === choice.text, "tokens make up the text: " + JSON.stringify(lp.tokens));
// Greedy: each token is the likeliest, so its log-probability is the largest of its top_logprobs.
lp.top_logprobs.forEach((top, i) =>
  check(Math.abs(Math.max(...Object.values(top)) - lp.token_logprobs[i]) < 1e-6, "greedy token " + i + " is the likeliest"));

// Sampled with a seed: the same text whole and streamed.
const sreq = { model, prompt: "The house", max_tokens: 24, temperature: 1.0, seed: 7 };
const sampled = await client.completions.create(sreq);
const stream = await client.completions.create({ ...sreq, stream: true });
let text = "";
let last = null;
for await (const chunk of stream) {
  text += chunk.choices[0].text;
  last = chunk;
}
const want = sampled.choices[0];
check(text === want.text, "streamed text " + JSON.stringify(text) + " != " + JSON.stringify(want.text));
check(last && last.choices[0].finish_reason === want.finish_reason, "the last chunk's finish_reason");

try {
  await client.completions.create({ model, prompt: "x", max_tokens: -1 });
  check(false, "max_tokens -1 was accepted");
} catch (e) {
  check(e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "max_tokens", "400: " + e);
}
try {
  await new OpenAI({ baseURL: baseURL + "/v1", apiKey: "wrong", maxRetries: 0 }).models.list();
  check(false, "a wrong API key was accepted");
} catch (e) {
  check(e instanceof OpenAI.AuthenticationError && e.status === 401, "401: " + e);
}
console.log(failed ? failed + " checks failed" : "all checks passed: " + JSON.stringify(want.text));
process.exit(failed ? 1 : 0);
