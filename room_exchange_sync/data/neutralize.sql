-- A neutralized copy (staging, test) of a production database must never write to the
-- real room calendars: every connection goes back to draft and stops syncing.
UPDATE room_exchange_connection
   SET state = 'draft', client_secret = NULL, private_key = NULL;
UPDATE room_exchange_calendar
   SET sync_enabled = FALSE, state = 'not_configured';
