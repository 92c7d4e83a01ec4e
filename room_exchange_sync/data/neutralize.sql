-- A neutralized copy (staging, test) of a production database must never write to the
-- real room calendars nor hold the production credentials: every connection goes back
-- to draft without its secrets, the Microsoft accounts lose their tokens, the rooms stop
-- syncing and forget their delta links, and change-notification subscriptions and
-- sign-ins in progress and sync requests are deleted. Bindings stay: they are the bookings' history.
UPDATE room_exchange_connection
   SET state = 'draft',
       client_secret = NULL,
       private_key = NULL,
       notification_url_override = NULL;
UPDATE room_exchange_account
   SET token_cache = NULL;
UPDATE room_exchange_calendar
   SET sync_enabled = FALSE,
       state = 'not_configured',
       delta_link = NULL,
       next_attempt_date = NULL;
DELETE FROM room_exchange_subscription;
DELETE FROM room_exchange_auth_flow;
DELETE FROM room_exchange_sync_request;
