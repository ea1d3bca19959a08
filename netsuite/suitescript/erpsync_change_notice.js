/**
 * erpsync change notice (user-event script): after an Item Fulfillment or Inventory Item is saved, post a signed
 * thin notice of the change to erpsync's receiver (POST /webhooks/netsuite), so the shop hears of it in seconds.
 * After a transaction that moves stock is saved (inventory adjustment, item fulfillment, item receipt, inventory
 * transfer), post an inventoryItem notice of each item it moves, caused by it: NetSuite does not save the item.
 * erpsync's change reader (poll-netsuite, every minute) stays on as the safety net and gives the same change the
 * same delivery id, so a change both notified and read is one event. An inventory item's save is also a
 * price.changed notice of the item (its prices live on its pricing sublist). Deployment: README.md beside this file.
 *
 * Script parameters: custscript_erpsync_receiver_url (the receiver's https URL) and custscript_erpsync_secret_id
 * (the script ID of the API Secret holding the key; never the key itself: Oracle, "SuiteScript Security
 * Considerations"). Oracle pages followed: "https.post(options)" (N/https; 10 units; 5 s to connect, 45 s to send),
 * "afterSubmit(scriptContext)", "record.load(options)", "Record.getSublistValue(options)",
 * "search.lookupFields(options)", "runtime.Script.getParameter(options)".
 *
 * @NApiVersion 2.1
 * @NScriptType UserEventScript
 * @NModuleScope SameAccount
 */
define(['N/https', 'N/record', 'N/runtime', 'N/search', 'N/log', './erpsync_notice_lib'],
    (https, records, runtime, search, log, notices) => {
    const PARAM_URL = 'custscript_erpsync_receiver_url';
    const PARAM_SECRET = 'custscript_erpsync_secret_id';
    // The record types erpsync reads back (record.type, lower case) → the notices a save of one gives.
    const WATCHED = {itemfulfillment: ['itemFulfillment'], inventoryitem: ['inventoryItem', 'price']};
    // Transactions that move stock (record.type → the sublist of their item lines). Saving one does not save the
    // items, so each item it names gets an inventoryItem notice caused by it (the reader's stockMove).
    const MOVES_STOCK = {inventoryadjustment: 'inventory', itemfulfillment: 'item', itemreceipt: 'item',
                         inventorytransfer: 'inventory'};

    const post = (url, secretId, kind, id, externalId, lastModified, cause) => {
        const {msgId, body} = notices.notice(kind, id, externalId, lastModified, cause);
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
    };

    /** The ids of the items on the transaction's item lines, each once. */
    const movedItems = (saved, sublistId) => {
        const ids = new Set();
        for (let line = 0; line < saved.getLineCount({sublistId: sublistId}); line += 1) {
            const item = saved.getSublistValue({sublistId: sublistId, fieldId: 'item', line: line});
            if (item) {
                ids.add(String(item));
            }
        }
        return [...ids].sort((a, b) => Number(a) - Number(b));
    };

    const afterSubmit = (context) => {
        if (context.type === context.UserEventType.DELETE) {
            return; // a deletion leaves no record to read; the change reader does not report it either
        }
        const record = context.newRecord;
        const type = String(record.type).toLowerCase();
        const kinds = WATCHED[type] || [];
        const sublistId = MOVES_STOCK[type];
        if (!kinds.length && !sublistId) {
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
        kinds.forEach((kind) => post(url, secretId, kind, record.id, externalId, lastModified, null));
        if (sublistId) {
            const cause = {recordType: type, id: record.id};
            movedItems(saved, sublistId).forEach((item) => {
                // The item's external id, as the reader's SuiteQL gives it (search.lookupFields: 1 unit).
                const found = search.lookupFields({type: search.Type.ITEM, id: item, columns: ['externalid']});
                const itemExternalId = (found.externalid && found.externalid[0] && found.externalid[0].value) || null;
                post(url, secretId, 'inventoryItem', item, itemExternalId, lastModified, cause);
            });
        }
    };

    return {afterSubmit: afterSubmit};
});
