/**
 * erpsync change notice (user-event script): after an Item Fulfillment or Inventory Item is saved, post a signed
 * thin notice of the change to erpsync's receiver (POST /webhooks/netsuite), so the shop hears of it in seconds.
 * erpsync's change reader (poll-netsuite, every minute) stays on as the safety net and gives the same change the
 * same delivery id, so a change both notified and read is one event. An inventory item's save is also a
 * price.changed notice of the item (its prices live on its pricing sublist). Deployment: README.md beside this file.
 *
 * Script parameters: custscript_erpsync_receiver_url (the receiver's https URL) and custscript_erpsync_secret_id
 * (the script ID of the API Secret holding the key; never the key itself: Oracle, "SuiteScript Security
 * Considerations"). Oracle pages followed: "https.post(options)" (N/https; 10 units; 5 s to connect, 45 s to send),
 * "afterSubmit(scriptContext)", "record.load(options)", "runtime.Script.getParameter(options)".
 *
 * @NApiVersion 2.1
 * @NScriptType UserEventScript
 * @NModuleScope SameAccount
 */
define(['N/https', 'N/record', 'N/runtime', 'N/log', './erpsync_notice_lib'], (https, records, runtime, log, notices) => {
    const PARAM_URL = 'custscript_erpsync_receiver_url';
    const PARAM_SECRET = 'custscript_erpsync_secret_id';
    // The record types erpsync reads back (record.type, lower case) → the notices a save of one gives.
    const WATCHED = {itemfulfillment: ['itemFulfillment'], inventoryitem: ['inventoryItem', 'price']};

    const afterSubmit = (context) => {
        if (context.type === context.UserEventType.DELETE) {
            return; // a deletion leaves no record to read; the change reader does not report it either
        }
        const record = context.newRecord;
        const kinds = WATCHED[String(record.type).toLowerCase()];
        if (!kinds) {
            return;
        }
        const script = runtime.getCurrentScript();
        const url = script.getParameter({name: PARAM_URL});
        const secretId = script.getParameter({name: PARAM_SECRET});
        if (!url || !secretId) {
            log.error({title: 'erpsync notice not sent', details: `set ${PARAM_URL} and ${PARAM_SECRET}`});
            return;
        }
        // The record as saved (newRecord is as submitted, without the stamp the save gave it): record.load, 5 units
        // for an item and 10 for a transaction (Oracle, "record.load(options)").
        const saved = records.load({type: record.type, id: record.id});
        const lastModified = saved.getValue({fieldId: 'lastmodifieddate'});
        const externalId = saved.getValue({fieldId: 'externalid'}) || null;
        kinds.forEach((kind) => {
            const {msgId, body} = notices.notice(kind, record.id, externalId, lastModified);
            try {
                const headers = notices.signedHeaders(msgId, Math.floor(Date.now() / 1000), body, secretId);
                const answer = https.post({url: url, body: body, headers: headers});
                if (answer.code >= 300) {
                    log.error({title: 'erpsync notice refused', details: `${msgId}: HTTP ${answer.code}`});
                }
            } catch (error) {
                // Never fail the user's save over a notice: the change reader reads this change within minutes.
                log.error({title: 'erpsync notice not sent', details: `${msgId}: ${error.name}`});
            }
        });
    };

    return {afterSubmit: afterSubmit};
});
