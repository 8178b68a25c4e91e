// Swagger UI as a person uses it, in Debian's headless Chromium driven by playwright-core:
// load /docs, authorize with the OAuth2 password flow, "Try it out" on create order, Execute,
// and expect a 201 whose body says "total_price": "5.00".
//
//   node swagger.mjs <base-url> <email> <password>
//
// Every step has a bounded time (STEP_TIMEOUT_MS, default 20000). A step that does not happen
// in time fails the run with a message naming it and a screenshot (failure-<step>.png).
// Screenshots go to SCREENSHOT_DIR (default target/browser): 1-docs.png, 2-authorized.png,
// 3-created.png. Only the base URL's origin is reached: every other request is aborted.
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const [base, email, password] = process.argv.slice(2);
if (!base || !email || !password) {
    console.error('usage: node swagger.mjs <base-url> <email> <password>');
    process.exit(2);
}
const origin = new URL(base).origin;
const stepTimeout = Number(process.env.STEP_TIMEOUT_MS || 20000);
const shots = resolve(process.env.SCREENSHOT_DIR || 'target/browser');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
mkdirSync(shots, { recursive: true });

const order = {
    customer_name: 'Mesa navegador',
    items: [{ product_name: 'Café con leche', unit_price: '2.50', quantity: 2 }],
};

const log = (msg) => console.log(`  [browser] ${msg}`);
const events = []; // console errors, failed and blocked requests: printed when a step fails

let browser;
let page;

async function screenshot(name) {
    const path = join(shots, name);
    await page.screenshot({ path, fullPage: false, timeout: stepTimeout });
    return path;
}

// Runs one step with its own deadline; on failure saves a screenshot and exits non-zero.
async function step(name, fn) {
    const started = Date.now();
    let timer;
    try {
        const deadline = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not happen within ${stepTimeout} ms`)), stepTimeout);
        });
        const value = await Promise.race([fn(), deadline]);
        log(`ok   ${name} (${Date.now() - started} ms)`);
        return value;
    } catch (error) {
        console.error(`  [browser] FAIL ${name}: ${error.message.split('\n')[0]}`);
        if (page) {
            const file = `failure-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`;
            try {
                console.error(`  [browser] screenshot: ${await screenshot(file)}`);
            } catch (e) {
                console.error(`  [browser] no screenshot: ${e.message.split('\n')[0]}`);
            }
        }
        for (const e of events.slice(-20)) console.error(`  [browser] seen: ${e}`);
        await browser?.close().catch(() => {});
        process.exit(1);
    } finally {
        clearTimeout(timer);
    }
}

browser = await step('launch Chromium', () =>
    chromium.launch({
        executablePath,
        timeout: stepTimeout,
        args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
        ],
    }),
);
log(`Chromium ${browser.version()}`);

const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, locale: 'es-ES' });
page = await context.newPage();
// A little under the step time, so that a missing element is named in the message.
page.setDefaultTimeout(Math.max(1000, stepTimeout - 2000));
page.setDefaultNavigationTimeout(Math.max(1000, stepTimeout - 2000));
page.on('console', (m) => m.type() === 'error' && events.push(`console error: ${m.text()}`));
page.on('pageerror', (e) => events.push(`page error: ${e.message}`));
page.on('requestfailed', (r) => events.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) events.push(`${r.request().method()} ${u.pathname} -> ${r.status()}`);
});
// Loopback only: the page may reach the service and nothing else.
await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    events.push(`blocked: ${url}`);
    return route.abort('blockedbyclient');
});

await step('open /docs and follow the redirect to /docs/', async () => {
    const response = await page.goto(`${base}/docs`, { waitUntil: 'load' });
    if (!response || !response.ok()) throw new Error(`GET /docs answered ${response?.status()}`);
    const path = new URL(page.url()).pathname;
    if (path !== '/docs/') throw new Error(`expected to land on /docs/, landed on ${path}`);
});

const operation = page.locator('#operations-orders-create_order');
await step('Swagger UI shows the API and the create order operation', async () => {
    await page.locator('.swagger-ui .info .title').waitFor({ state: 'visible' });
    await operation.waitFor({ state: 'visible' });
    await page.locator('.swagger-ui .auth-wrapper button.authorize').waitFor({ state: 'visible' });
});
await screenshot('1-docs.png');

// The password-flow section, found by its heading (its inputs turn into text once authorized).
const oauth2 = page.locator('.dialog-ux .modal-ux .auth-container').filter({
    has: page.locator('h4', { hasText: /OAuth2, password/ }),
});
await step('open the Authorize dialog', async () => {
    await page.locator('.swagger-ui .auth-wrapper button.authorize').click();
    await oauth2.waitFor({ state: 'visible' });
    await oauth2.locator('input[data-name="username"]').waitFor({ state: 'visible' });
});

let accessToken;
await step('authorize with the OAuth2 password flow', async () => {
    await oauth2.locator('input[data-name="username"]').fill(email);
    await oauth2.locator('input[data-name="password"]').fill(password);
    // The client id and secret stay empty, as the README tells people.
    const token = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/v1/auth/login');
    await oauth2.locator('button.authorize', { hasText: 'Authorize' }).click();
    const answer = await token;
    const sent = answer.request();
    const fields = [...new URLSearchParams(sent.postData() || '').keys()].join(', ');
    const basic = sent.headers().authorization;
    const client = !basic ? 'none' : basic === 'Basic Og==' ? 'Basic with an empty client id and secret' : 'Basic';
    log(`token request: ${sent.headers()['content-type']} (${fields}), client authorization: ${client}`);
    log(`token answer: ${answer.status()}, ${answer.headers()['content-type']}, cache-control: ${answer.headers()['cache-control'] ?? 'none'}`);
    if (answer.status() !== 200) {
        throw new Error(`the token endpoint answered ${answer.status()}: ${(await answer.text()).slice(0, 300)}`);
    }
    accessToken = (await answer.json()).access_token;
    if (!accessToken) throw new Error('the token endpoint answered 200 without an access_token');
    // Swagger UI shows "Logout" once it has stored the token.
    const logout = oauth2.locator('button.authorize', { hasText: 'Logout' });
    const errors = oauth2.locator('.errors');
    await logout.or(errors.first()).waitFor({ state: 'visible' });
    if (await errors.count()) {
        throw new Error(`Swagger UI shows an error: ${(await errors.allInnerTexts()).join(' | ')}`);
    }
    const shown = (await oauth2.innerText()).toLowerCase();
    if (!shown.includes('authorized')) throw new Error('the dialog does not say "Authorized"');
    if (!shown.includes(email.toLowerCase())) throw new Error(`the dialog does not show the username ${email}`);
});
await screenshot('2-authorized.png');

await step('close the Authorize dialog', async () => {
    await oauth2.locator('button.btn-done').click();
    await page.locator('.dialog-ux .modal-ux').waitFor({ state: 'detached' });
    // The padlock on the Authorize button is now locked.
    await page.locator('.swagger-ui .auth-wrapper button.authorize.locked').waitFor({ state: 'visible' });
});

await step('expand POST /api/v1/orders', async () => {
    await operation.locator('.opblock-summary').first().click();
    await operation.locator('.opblock-body').waitFor({ state: 'visible' });
});

const body = operation.locator('textarea.body-param__text');
await step('click "Try it out" and enter the order', async () => {
    await operation.locator('button.try-out__btn', { hasText: 'Try it out' }).click();
    await body.waitFor({ state: 'visible' });
    await body.fill(JSON.stringify(order, null, 2));
    const entered = JSON.parse(await body.inputValue());
    if (entered.customer_name !== order.customer_name) throw new Error('the body editor did not keep the order');
});

let status;
let text;
await step('Execute and see the live response', async () => {
    const request = page.waitForResponse(
        (r) => new URL(r.url()).pathname === '/api/v1/orders' && r.request().method() === 'POST',
    );
    await operation.locator('button.execute').click();
    const answer = await request;
    const sent = answer.request().headers().authorization || '';
    if (sent !== `Bearer ${accessToken}`) {
        throw new Error(`Swagger UI did not send the token it obtained (authorization: "${sent.slice(0, 20)}...")`);
    }
    const live = operation.locator('.live-responses-table tr.response');
    await live.first().waitFor({ state: 'visible' });
    status = (await live.first().locator('.response-col_status').innerText()).trim();
    text = await live.first().locator('.response-col_description .highlight-code pre').first().textContent();
});

await step('the responses section shows 201 and "total_price": "5.00"', async () => {
    if (status !== '201') throw new Error(`the live response shows status ${status}, expected 201; body: ${text}`);
    if (!/"total_price":\s*"5\.00"/.test(text)) {
        throw new Error(`the response body does not show "total_price": "5.00": ${text}`);
    }
    const created = JSON.parse(text);
    if (created.customer_name !== order.customer_name) {
        throw new Error(`the created order is for ${JSON.stringify(created.customer_name)}`);
    }
    log(`created order ${created.id}: ${created.customer_name}, total_price ${created.total_price}`);
    // Scroll so that the screenshot shows the status and the body.
    await operation.locator('.live-responses-table').scrollIntoViewIfNeeded();
});
await screenshot('3-created.png');

await browser.close();
log(`passed; screenshots in ${shots}`);
