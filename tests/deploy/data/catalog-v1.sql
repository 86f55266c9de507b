--
-- PostgreSQL database dump
--

\restrict 3QMDUGWT3OhpVqgbt0QWolp249PwOU9KWRRTOOvceQSPkwKYPY85utckM9zxhi8

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: bluebroker_meta; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.bluebroker_meta (
    key character varying(64) NOT NULL,
    value text NOT NULL
);


--
-- Name: catalogs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.catalogs (
    id integer NOT NULL,
    path character varying(512) NOT NULL,
    metadata jsonb NOT NULL,
    created double precision NOT NULL,
    num_runs bigint NOT NULL
);


--
-- Name: catalogs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.catalogs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: catalogs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.catalogs_id_seq OWNED BY public.catalogs.id;


--
-- Name: chunks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.chunks (
    id integer NOT NULL,
    stream_id integer NOT NULL,
    "column" character varying(512) NOT NULL,
    start_row bigint NOT NULL,
    stop_row bigint NOT NULL,
    tier integer NOT NULL,
    dtype character varying(64) NOT NULL,
    shape jsonb NOT NULL,
    payload bytea NOT NULL
);


--
-- Name: chunks_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.chunks_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: chunks_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.chunks_id_seq OWNED BY public.chunks.id;


--
-- Name: datums; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.datums (
    datum_id character varying(256) NOT NULL,
    resource character varying(128) NOT NULL,
    kwargs jsonb NOT NULL
);


--
-- Name: descriptors; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.descriptors (
    id integer NOT NULL,
    uid character varying(128) NOT NULL,
    run_id integer NOT NULL,
    stream_id integer NOT NULL,
    "time" double precision NOT NULL,
    doc jsonb NOT NULL,
    digest bytea NOT NULL
);


--
-- Name: descriptors_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.descriptors_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: descriptors_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.descriptors_id_seq OWNED BY public.descriptors.id;


--
-- Name: documents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.documents (
    id bigint NOT NULL,
    run_id integer NOT NULL,
    name character varying(32) NOT NULL,
    payload bytea NOT NULL
);


--
-- Name: documents_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.documents_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: documents_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.documents_id_seq OWNED BY public.documents.id;


--
-- Name: events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.events (
    uid character varying(128) NOT NULL,
    stream_id integer NOT NULL,
    "row" bigint NOT NULL,
    digest bytea NOT NULL
);


--
-- Name: resources; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.resources (
    uid character varying(128) NOT NULL,
    run_id integer NOT NULL,
    doc jsonb NOT NULL,
    digest bytea NOT NULL
);


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id integer NOT NULL,
    catalog_id integer NOT NULL,
    uid character varying(128) NOT NULL,
    "time" double precision NOT NULL,
    scan_id bigint,
    start jsonb NOT NULL,
    stop jsonb,
    summary jsonb NOT NULL,
    text text NOT NULL,
    start_digest bytea NOT NULL,
    stop_digest bytea
);


--
-- Name: runs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: runs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.runs_id_seq OWNED BY public.runs.id;


--
-- Name: stream_datums; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stream_datums (
    uid character varying(128) NOT NULL,
    stream_resource character varying(128) NOT NULL,
    stream_id integer NOT NULL,
    data_key character varying(512) NOT NULL,
    seq_start bigint NOT NULL,
    seq_stop bigint NOT NULL,
    index_start bigint NOT NULL,
    index_stop bigint NOT NULL,
    digest bytea NOT NULL
);


--
-- Name: stream_resources; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.stream_resources (
    uid character varying(128) NOT NULL,
    run_id integer NOT NULL,
    data_key character varying(512) NOT NULL,
    doc jsonb NOT NULL,
    digest bytea NOT NULL
);


--
-- Name: streams; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.streams (
    id integer NOT NULL,
    run_id integer NOT NULL,
    name character varying(256) NOT NULL,
    num_rows bigint NOT NULL,
    stream_rows bigint NOT NULL
);


--
-- Name: streams_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.streams_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: streams_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.streams_id_seq OWNED BY public.streams.id;


--
-- Name: catalogs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.catalogs ALTER COLUMN id SET DEFAULT nextval('public.catalogs_id_seq'::regclass);


--
-- Name: chunks id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunks ALTER COLUMN id SET DEFAULT nextval('public.chunks_id_seq'::regclass);


--
-- Name: descriptors id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.descriptors ALTER COLUMN id SET DEFAULT nextval('public.descriptors_id_seq'::regclass);


--
-- Name: documents id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.documents ALTER COLUMN id SET DEFAULT nextval('public.documents_id_seq'::regclass);


--
-- Name: runs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs ALTER COLUMN id SET DEFAULT nextval('public.runs_id_seq'::regclass);


--
-- Name: streams id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.streams ALTER COLUMN id SET DEFAULT nextval('public.streams_id_seq'::regclass);


--
-- Data for Name: bluebroker_meta; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.bluebroker_meta (key, value) FROM stdin;
schema_version	1
\.


--
-- Data for Name: catalogs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.catalogs (id, path, metadata, created, num_runs) FROM stdin;
1	bmm/raw	{}	1796327247.531854	2
\.


--
-- Data for Name: chunks; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.chunks (id, stream_id, "column", start_row, stop_row, tier, dtype, shape, payload) FROM stdin;
1	1	time	0	5	0	<f8	[]	\\xed59e3d371c4da410d61e3d371c4da415e6ae3d371c4da41996fe3d371c4da418f74e3d371c4da41
2	1	seq_num	0	5	0	<i8	[]	\\x01000000000000000200000000000000030000000000000004000000000000000500000000000000
3	1	data/x	0	5	0	<f8	[]	\\x0000000000000000000000000000f03f000000000000004000000000000008400000000000001040
4	1	timestamps/x	0	5	0	<f8	[]	\\x000000000000f03f0000000000000040000000000000084000000000000010400000000000001440
5	2	time	0	3	0	<f8	[]	\\xa207fad371c4da411f0dfad371c4da419711fad371c4da41
6	2	seq_num	0	3	0	<i8	[]	\\x010000000000000002000000000000000300000000000000
7	2	data/x	0	3	0	<f8	[]	\\x000000000000000000000000000000400000000000001040
8	2	timestamps/x	0	3	0	<f8	[]	\\x000000000000f03f00000000000000400000000000000840
\.


--
-- Data for Name: datums; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.datums (datum_id, resource, kwargs) FROM stdin;
\.


--
-- Data for Name: descriptors; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.descriptors (id, uid, run_id, stream_id, "time", doc, digest) FROM stdin;
1	515c08d2-9821-4bc7-a114-d1a1fc3e4a17	1	1	1796327247.5514705	{"uid": "515c08d2-9821-4bc7-a114-d1a1fc3e4a17", "name": "primary", "time": 1796327247.5514705, "hints": {}, "data_keys": {"x": {"dtype": "number", "shape": [], "source": "s"}}, "run_start": "v1-run-1", "object_keys": {}, "configuration": {}, "object_classes": {}}	\\x1871ee13ff3389daff8d676e6044586e
2	2d9aa2db-42d4-4468-bf62-439abdb05e73	2	2	1796327247.905931	{"uid": "2d9aa2db-42d4-4468-bf62-439abdb05e73", "name": "primary", "time": 1796327247.905931, "hints": {}, "data_keys": {"x": {"dtype": "number", "shape": [], "source": "s"}}, "run_start": "v1-run-2", "object_keys": {}, "configuration": {}, "object_classes": {}}	\\x42dffd40badb58fdc8b07948336fc183
\.


--
-- Data for Name: documents; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.documents (id, run_id, name, payload) FROM stdin;
1	1	start	\\x84a3756964a876312d72756e2d31a474696d65cb41dac471d3e33c6ea77363616e5f696401a673616d706c65a27331
2	1	descriptor	\\x89ad636f6e66696775726174696f6e80a9646174615f6b65797381a17883a6736f75726365a173a56474797065a66e756d626572a5736861706590a46e616d65a77072696d617279ab6f626a6563745f6b65797380a972756e5f7374617274a876312d72756e2d31a474696d65cb41dac471d3e34b4ba3756964d92435313563303864322d393832312d346263372d613131342d643161316663336534613137ae6f626a6563745f636c617373657380a568696e747380
3	1	event*	\\x87a3756964d92464343331363666362d343037652d343261362d386663302d653965346364666638373336a474696d65cb41dac471d3e359eda46461746181a178cb0000000000000000aa74696d657374616d707381a178cb3ff0000000000000a77365715f6e756d01a666696c6c656480aa64657363726970746f72d92435313563303864322d393832312d346263372d613131342d64316131666333653461313787a3756964d92465653061656237352d343166372d346133662d626364652d623166383438623032316166a474696d65cb41dac471d3e3610da46461746181a178cb3ff0000000000000aa74696d657374616d707381a178cb4000000000000000a77365715f6e756d02a666696c6c656480aa64657363726970746f72d92435313563303864322d393832312d346263372d613131342d64316131666333653461313787a3756964d92466346636613338642d376261342d343362352d393934362d643666313365666532633330a474696d65cb41dac471d3e36a5ea46461746181a178cb4000000000000000aa74696d657374616d707381a178cb4008000000000000a77365715f6e756d03a666696c6c656480aa64657363726970746f72d92435313563303864322d393832312d346263372d613131342d64316131666333653461313787a3756964d92430623435636566612d653533662d343031372d383834352d303664623939373161613637a474696d65cb41dac471d3e36f99a46461746181a178cb4008000000000000aa74696d657374616d707381a178cb4010000000000000a77365715f6e756d04a666696c6c656480aa64657363726970746f72d92435313563303864322d393832312d346263372d613131342d64316131666333653461313787a3756964d92437373336363135372d626131322d343665342d623234392d353265323261653137333161a474696d65cb41dac471d3e3748fa46461746181a178cb4010000000000000aa74696d657374616d707381a178cb4014000000000000a77365715f6e756d05a666696c6c656480aa64657363726970746f72d92435313563303864322d393832312d346263372d613131342d643161316663336534613137
4	1	stop	\\x86a3756964d92433616563646465642d626362322d346433662d626238382d653833636165303564663534a474696d65cb41dac471d3e37aa8a972756e5f7374617274a876312d72756e2d31ab657869745f737461747573a773756363657373a6726561736f6ea0aa6e756d5f6576656e747381a77072696d61727905
5	2	start	\\x84a3756964a876312d72756e2d32a474696d65cb41dac471d3f9f444a77363616e5f696402a673616d706c65a27332
6	2	descriptor	\\x89ad636f6e66696775726174696f6e80a9646174615f6b65797381a17883a6736f75726365a173a56474797065a66e756d626572a5736861706590a46e616d65a77072696d617279ab6f626a6563745f6b65797380a972756e5f7374617274a876312d72756e2d32a474696d65cb41dac471d3f9fac6a3756964d92432643961613264622d343264342d343436382d626636322d343339616264623035653733ae6f626a6563745f636c617373657380a568696e747380
7	2	event*	\\x87a3756964d92462303831616366392d363130632d343361312d383066312d303465613030363365373439a474696d65cb41dac471d3fa07a2a46461746181a178cb0000000000000000aa74696d657374616d707381a178cb3ff0000000000000a77365715f6e756d01a666696c6c656480aa64657363726970746f72d92432643961613264622d343264342d343436382d626636322d34333961626462303565373387a3756964d92439623661316162362d353035372d343735312d393630632d373362323666383266326461a474696d65cb41dac471d3fa0d1fa46461746181a178cb4000000000000000aa74696d657374616d707381a178cb4000000000000000a77365715f6e756d02a666696c6c656480aa64657363726970746f72d92432643961613264622d343264342d343436382d626636322d34333961626462303565373387a3756964d92465306131313064392d366162312d346266662d626363352d666133353363396230396331a474696d65cb41dac471d3fa1197a46461746181a178cb4010000000000000aa74696d657374616d707381a178cb4008000000000000a77365715f6e756d03a666696c6c656480aa64657363726970746f72d92432643961613264622d343264342d343436382d626636322d343339616264623035653733
8	2	stop	\\x86a3756964d92462313932316230652d656161392d343565302d623636392d393266346564333931306663a474696d65cb41dac471d3fa15dea972756e5f7374617274a876312d72756e2d32ab657869745f737461747573a773756363657373a6726561736f6ea0aa6e756d5f6576656e747381a77072696d61727903
\.


--
-- Data for Name: events; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.events (uid, stream_id, "row", digest) FROM stdin;
d43166f6-407e-42a6-8fc0-e9e4cdff8736	1	0	\\x77a083a2582d12b472a0b84e268a3ccd
ee0aeb75-41f7-4a3f-bcde-b1f848b021af	1	1	\\xb895234cd86b1f25659463bc63b37c39
f4f6a38d-7ba4-43b5-9946-d6f13efe2c30	1	2	\\x6d31e157ff91b23fec3a670c39f2dcd8
0b45cefa-e53f-4017-8845-06db9971aa67	1	3	\\x6947ea8c7bf5c85d50c3d0473a0607fb
77366157-ba12-46e4-b249-52e22ae1731a	1	4	\\x0c8e3d068f9de5a467ee60222e99d51b
b081acf9-610c-43a1-80f1-04ea0063e749	2	0	\\x9fa4adae7830648127f17034135ffe58
9b6a1ab6-5057-4751-960c-73b26f82f2da	2	1	\\x8e47e918b61c00f75479b6975880101a
e0a110d9-6ab1-4bff-bcc5-fa353c9b09c1	2	2	\\xcf24157bc4dae51b736075c85838b317
\.


--
-- Data for Name: resources; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.resources (uid, run_id, doc, digest) FROM stdin;
\.


--
-- Data for Name: runs; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.runs (id, catalog_id, uid, "time", scan_id, start, stop, summary, text, start_digest, stop_digest) FROM stdin;
1	1	v1-run-1	1796327247.5505633	1	{"uid": "v1-run-1", "time": 1796327247.5505633, "sample": "s1", "scan_id": 1}	{"uid": "3aecdded-bcb2-4d3f-bb88-e83cae05df54", "time": 1796327247.5543613, "reason": "", "run_start": "v1-run-1", "num_events": {"primary": 5}, "exit_status": "success"}	{"uid": "v1-run-1", "scan_id": 1, "datetime": "2026-12-03T19:47:27.550563+00:00", "duration": 0.0037980079650878906, "plan_name": null, "timestamp": 1796327247.5505633, "num_events": {"primary": 5}, "exit_status": "success", "stream_names": ["primary"]}	v1 run 1 1796327247.5505633 s1 1 3aecdded bcb2 4d3f bb88 e83cae05df54 1796327247.5543613 v1 run 1 success 5	\\xc40e8c5d86a45b1dfe49ba8905492e80	\\xed14091a1b669df844aee5fb1f0b0f93
2	1	v1-run-2	1796327247.9055338	2	{"uid": "v1-run-2", "time": 1796327247.9055338, "sample": "s2", "scan_id": 2}	{"uid": "b1921b0e-eaa9-45e0-b669-92f4ed3910fc", "time": 1796327247.9075847, "reason": "", "run_start": "v1-run-2", "num_events": {"primary": 3}, "exit_status": "success"}	{"uid": "v1-run-2", "scan_id": 2, "datetime": "2026-12-03T19:47:27.905534+00:00", "duration": 0.0020508766174316406, "plan_name": null, "timestamp": 1796327247.9055338, "num_events": {"primary": 3}, "exit_status": "success", "stream_names": ["primary"]}	v1 run 2 1796327247.9055338 s2 2 b1921b0e eaa9 45e0 b669 92f4ed3910fc 1796327247.9075847 v1 run 2 success 3	\\x6f54aa633c484ccd027964c18e4df5a9	\\x4244d54548cc7b122194526edb9eb613
\.


--
-- Data for Name: stream_datums; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.stream_datums (uid, stream_resource, stream_id, data_key, seq_start, seq_stop, index_start, index_stop, digest) FROM stdin;
\.


--
-- Data for Name: stream_resources; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.stream_resources (uid, run_id, data_key, doc, digest) FROM stdin;
\.


--
-- Data for Name: streams; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.streams (id, run_id, name, num_rows, stream_rows) FROM stdin;
1	1	primary	5	0
2	2	primary	3	0
\.


--
-- Name: catalogs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.catalogs_id_seq', 1, true);


--
-- Name: chunks_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.chunks_id_seq', 8, true);


--
-- Name: descriptors_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.descriptors_id_seq', 2, true);


--
-- Name: documents_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.documents_id_seq', 8, true);


--
-- Name: runs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.runs_id_seq', 2, true);


--
-- Name: streams_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.streams_id_seq', 2, true);


--
-- Name: bluebroker_meta bluebroker_meta_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.bluebroker_meta
    ADD CONSTRAINT bluebroker_meta_pkey PRIMARY KEY (key);


--
-- Name: catalogs catalogs_path_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.catalogs
    ADD CONSTRAINT catalogs_path_key UNIQUE (path);


--
-- Name: catalogs catalogs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.catalogs
    ADD CONSTRAINT catalogs_pkey PRIMARY KEY (id);


--
-- Name: chunks chunks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunks
    ADD CONSTRAINT chunks_pkey PRIMARY KEY (id);


--
-- Name: datums datums_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.datums
    ADD CONSTRAINT datums_pkey PRIMARY KEY (datum_id);


--
-- Name: descriptors descriptors_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.descriptors
    ADD CONSTRAINT descriptors_pkey PRIMARY KEY (id);


--
-- Name: descriptors descriptors_uid_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.descriptors
    ADD CONSTRAINT descriptors_uid_key UNIQUE (uid);


--
-- Name: documents documents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.documents
    ADD CONSTRAINT documents_pkey PRIMARY KEY (id);


--
-- Name: events events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (uid);


--
-- Name: resources resources_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.resources
    ADD CONSTRAINT resources_pkey PRIMARY KEY (uid);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: runs runs_uid_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_uid_key UNIQUE (uid);


--
-- Name: stream_datums stream_datums_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_datums
    ADD CONSTRAINT stream_datums_pkey PRIMARY KEY (uid);


--
-- Name: stream_resources stream_resources_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_resources
    ADD CONSTRAINT stream_resources_pkey PRIMARY KEY (uid);


--
-- Name: streams streams_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.streams
    ADD CONSTRAINT streams_pkey PRIMARY KEY (id);


--
-- Name: streams uq_streams_run_name; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.streams
    ADD CONSTRAINT uq_streams_run_name UNIQUE (run_id, name);


--
-- Name: ix_chunks_column_rows; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_chunks_column_rows ON public.chunks USING btree (stream_id, "column", start_row);


--
-- Name: ix_datums_resource; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_datums_resource ON public.datums USING btree (resource);


--
-- Name: ix_descriptors_stream_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_descriptors_stream_id ON public.descriptors USING btree (stream_id);


--
-- Name: ix_documents_run; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_documents_run ON public.documents USING btree (run_id, id);


--
-- Name: ix_resources_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_resources_run_id ON public.resources USING btree (run_id);


--
-- Name: ix_runs_catalog_scan_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_catalog_scan_id ON public.runs USING btree (catalog_id, scan_id, "time");


--
-- Name: ix_runs_catalog_time; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_catalog_time ON public.runs USING btree (catalog_id, "time");


--
-- Name: ix_runs_text; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_text ON public.runs USING gin (to_tsvector('simple'::regconfig, text));


--
-- Name: ix_stream_datums_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_stream_datums_key ON public.stream_datums USING btree (stream_id, data_key, seq_start);


--
-- Name: ix_stream_resources_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_stream_resources_run_id ON public.stream_resources USING btree (run_id);


--
-- Name: chunks chunks_stream_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.chunks
    ADD CONSTRAINT chunks_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES public.streams(id);


--
-- Name: datums datums_resource_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.datums
    ADD CONSTRAINT datums_resource_fkey FOREIGN KEY (resource) REFERENCES public.resources(uid);


--
-- Name: descriptors descriptors_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.descriptors
    ADD CONSTRAINT descriptors_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: descriptors descriptors_stream_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.descriptors
    ADD CONSTRAINT descriptors_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES public.streams(id);


--
-- Name: documents documents_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.documents
    ADD CONSTRAINT documents_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: events events_stream_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.events
    ADD CONSTRAINT events_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES public.streams(id);


--
-- Name: resources resources_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.resources
    ADD CONSTRAINT resources_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: runs runs_catalog_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_catalog_id_fkey FOREIGN KEY (catalog_id) REFERENCES public.catalogs(id);


--
-- Name: stream_datums stream_datums_stream_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_datums
    ADD CONSTRAINT stream_datums_stream_id_fkey FOREIGN KEY (stream_id) REFERENCES public.streams(id);


--
-- Name: stream_datums stream_datums_stream_resource_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_datums
    ADD CONSTRAINT stream_datums_stream_resource_fkey FOREIGN KEY (stream_resource) REFERENCES public.stream_resources(uid);


--
-- Name: stream_resources stream_resources_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.stream_resources
    ADD CONSTRAINT stream_resources_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- Name: streams streams_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.streams
    ADD CONSTRAINT streams_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id);


--
-- PostgreSQL database dump complete
--

\unrestrict 3QMDUGWT3OhpVqgbt0QWolp249PwOU9KWRRTOOvceQSPkwKYPY85utckM9zxhi8

