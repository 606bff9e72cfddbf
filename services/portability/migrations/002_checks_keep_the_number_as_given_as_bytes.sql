-- A number as given may hold any character, and text and jsonb refuse a NUL: one such number made the
-- insert fail and lost its whole request. Its exact UTF-8 bytes go to phone_number_given (bounded);
-- phone_number keeps the number only when it is E.164 syntax (ASCII digits), for lookups by number.
ALTER TABLE portability_checks ADD COLUMN phone_number_given bytea;
UPDATE portability_checks SET phone_number_given = convert_to(phone_number, 'UTF8'),
                              result = result - 'phone_number';
UPDATE portability_checks SET phone_number = NULL WHERE phone_number !~ '^\+[1-9][0-9]{1,14}$';
ALTER TABLE portability_checks
    ALTER COLUMN phone_number_given SET NOT NULL,
    ADD CONSTRAINT phone_number_given_bounded CHECK (octet_length(phone_number_given) <= 256),
    ALTER COLUMN phone_number DROP NOT NULL,
    ADD CONSTRAINT phone_number_is_e164 CHECK (phone_number ~ '^\+[1-9][0-9]{1,14}$');
