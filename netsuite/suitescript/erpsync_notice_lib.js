/**
 * erpsync change notices: the notice of one change and its Standard Webhooks signature. A library module of
 * erpsync_change_notice.js (the user-event script), kept apart so that it holds no entry point and can be tested
 * outside NetSuite (tests/unit/test_suitescript_signing.py runs it under node).
 *
 * The notice (erpsync/change_intake.py): topic <recordType>.changed, webhook-id
 * netsuite:<recordType>:<internal id>:<lastModified, whole seconds, UTC>, body
 * {"type", "timestamp", "data": {"recordType", "id", "externalId", "lastModified"}}; an item whose stock a
 * transaction moved: the transaction's lastModified, ":by-<transaction id>" after the webhook-id and
 * "cause": {"recordType", "id"} in data.
 * The signature (standardwebhooks.com): "v1," + base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")),
 * the key being the base64 part of the receiver's whsec_ secret, held as an API Secret.
 * Oracle pages followed (N/crypto module): "crypto.createSecretKey(options)" (options.secret, the script ID of an
 * API Secret; options.encoding, the encoding of the key's clear text), "crypto.createHmac(options)",
 * "Hmac.update(options)" (inputEncoding, default UTF_8), "Hmac.digest(options)" (outputEncoding, default HEX).
 *
 * @NApiVersion 2.1
 * @NModuleScope SameAccount
 */
define(['N/crypto', 'N/encode'], (crypto, encode) => {
    /** "2026-11-28T03:01:20Z": whole seconds, UTC, fractions dropped (as the reader's SuiteQL gives them). */
    const wholeSecondsUtc = (date) => date.toISOString().replace(/\.\d{3}Z$/, 'Z');

    /** The notice of one change: {msgId, body}; ``lastModified`` a Date; ``cause`` ({recordType, id}), the
     * transaction whose save moved an item's stock, when the change is not the record's own save. */
    const notice = (recordType, id, externalId, lastModified, cause) => {
        const stamp = wholeSecondsUtc(lastModified);
        const data = {recordType: recordType, id: String(id), externalId: externalId || null, lastModified: stamp};
        if (cause) {
            data.cause = {recordType: String(cause.recordType), id: String(cause.id)};
        }
        const body = JSON.stringify({type: `${recordType}.changed`, timestamp: stamp, data: data});
        const by = cause ? `:by-${cause.id}` : '';
        return {msgId: `netsuite:${recordType}:${id}:${stamp}${by}`, body: body};
    };

    /** "v1,<base64>": the Standard Webhooks signature of ``body``, with the API Secret ``secretId``. */
    const signature = (msgId, timestamp, body, secretId) => {
        const key = crypto.createSecretKey({secret: secretId, encoding: encode.Encoding.BASE_64});
        const hmac = crypto.createHmac({algorithm: crypto.HashAlg.SHA256, key: key});
        hmac.update({input: `${msgId}.${timestamp}.${body}`, inputEncoding: encode.Encoding.UTF_8});
        return `v1,${hmac.digest({outputEncoding: encode.Encoding.BASE_64})}`;
    };

    /** The headers of a notice posted at ``timestamp`` (Unix seconds). */
    const signedHeaders = (msgId, timestamp, body, secretId) => ({
        'Content-Type': 'application/json',
        'webhook-id': msgId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signature(msgId, timestamp, body, secretId),
    });

    return {wholeSecondsUtc: wholeSecondsUtc, notice: notice, signature: signature, signedHeaders: signedHeaders};
});
