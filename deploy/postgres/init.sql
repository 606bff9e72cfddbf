-- One database and one role per service; no role can connect to another's database.
CREATE ROLE portability LOGIN PASSWORD 'portability';
CREATE DATABASE portability OWNER portability;
REVOKE ALL ON DATABASE portability FROM PUBLIC;

CREATE ROLE workflow LOGIN PASSWORD 'workflow';
CREATE DATABASE workflow OWNER workflow;
REVOKE ALL ON DATABASE workflow FROM PUBLIC;

CREATE ROLE notifier LOGIN PASSWORD 'notifier';
CREATE DATABASE notifier OWNER notifier;
REVOKE ALL ON DATABASE notifier FROM PUBLIC;
