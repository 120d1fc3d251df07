const xenring = require('xenring'); const http = require('node:http');
const agent = new http.Agent({ keepAlive: true });
agent.createConnection = (options, callback) => xenring.connect({ port: 'web2' }, callback);
const get = (p) => new Promise((res) => http.get({ agent, host: 'ring', path: p }, (r) => { let b=''; r.on('data', d=>b+=d); r.on('end', () => res(b)); }).on('error', (e) => res('ERROR ' + e.code)));
(async () => { console.log(await get('/1')); console.log(await get('/2')); await new Promise(r => setTimeout(r, 5600)); console.log(await get('/3-after-server-idle-timeout')); agent.destroy(); })();
