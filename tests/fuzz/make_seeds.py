#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py: writes the hand-made seeds of corpus/<harness>/.

The seeds are the example bodies of Zoho's API documentation (summed up in
tests/emulator/REFERENCE.md) and their variants.  Inputs the
fuzzers found interesting are added next to them by hand (named found-*), and
inputs that broke a contract as crash-* (see README.md); this script never
removes a file, it only (re)writes the seed-* files it knows.

    python3 tests/fuzz/make_seeds.py
"""
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")

THREAD_DETAILS = """{
"url": "/api/v3/threads/CT_1207124526552602256_60002085329-T-1291567019566818579",
"type": "chat_thread",
"data": {
"chat_id": "CT_1207124526552602256_60002085329-T-1291567019566818579",
"parent_chat_id": "CT_1207124526552602256_60002085329",
"thread_message_id": "1727333520582%2047588994306224",
"title": "Email campaign strategy discussion",
"follower_count": 26,
"is_follower": true,
"parent_participant": true,
"thread_state": "open"
}
}"""

FOLLOWERS = """{
"data": [
{
"user_id": "855727961",
"email_id": "ryan.west@zylker.com",
"name": "Ryan West"
},
{
"user_id": "855727962",
"email_id": "scott.fisher@zylker.com",
"name": "Scott Fisher"
}
]
}"""

NONFOLLOWERS = """{
"data": [
{
"user_id": "855727963",
"email_id": "tim.harrison@zylker.com",
"name": "Tim Harrison"
}
]
}"""

MEMBERS = """{
"members": [
{
"user_id": "431930546",
"email_id": "olivia.palmer@zylcal.com",
"name": "Olivia - Content Writer"
}
]
}"""

DOC_ERRORS = [
    '{\n"message": "The request cannot be performed. Usually because of malformed parameter or missing parameter."\n}',
    '{\n"message": "Request was rejected because of invalid AuthToken."\n}',
    '{\n"code": "thread_chatid_invalid",\n"message": "The thread chat ID given is not according to the format."\n}',
    '{\n"code": "external_communication_not_supported",\n"message": "Sorry, external communication is not supported as per the organization policy."\n}',
    '{\n"message": "Too many requests within a certain time frame."\n}',
    '{\n"code": "operation_failed",\n"message": "Sorry, we couldn\'t process your request due to a technical error. Please try again later."\n}',
    '{\n"Response Code": "204 No response"\n}',
    '{"error":{"code":"rate_limit_exceeded","message":"Too many requests"}}',
    '{"code":"request_limit_exceeded","message":"You have exceeded the URL throttle limits."}',
    '{"error":"invalid_client_secret"}',
    '{"error":"invalid_code"}',
    '{"error":"Access Denied","error_description":"You have made too many requests continuously. Please try again after some time.","status":"failure"}',
    '{"code":404,"message":42}',
    '{"error":{"code":"chat_not_found"},"message":"outer"}',
    '{"code":"' + "c" * 200 + '","message":"' + "m" * 400 + '"}',
    '<html><body>502 Bad Gateway</body></html>',
    '{"code":"operation_not_allowed","message":"thread closed"',
    '',
]

CHANNEL = {
    "channel_id": "O5797000000001", "chat_id": "CT_1207124526552602256_60002085329",
    "unique_name": "zylker-support", "name": "#Zylker-Support", "description": "Support desk",
    "level": "organization", "joined": True, "participant_count": 42,
    "total_message_count": "1234", "creation_time": "2024-09-26T12:22:00+05:30",
    "last_modified_time": "2024-09-26T12:22:00+05:30",
    "last_message_info": {"sender_id": "855727961", "message_type": "text",
                          "time": 1727333520582, "text": "hi", "sender_name": "Ryan West"},
}

THREAD_ENTRY = {
    "chat_id": "CT_1207124526552602256_60002085329-T-1291567019566818579",
    "parent_chat_id": "CT_1207124526552602256_60002085329",
    "thread_message_id": "1727333520582 47588994306224",
    "title": "Email campaign strategy discussion",
    "thread_state_info": {"thread_state": "closed"},
    "follower_count": "3", "is_follower": False,
    "parent_message_sender": {"id": "855727961", "name": "Ryan West"},
    "last_message_information": {"time": "1727333599000"}, "message_count": 7,
}

MESSAGE = {
    "id": "1629426730589_40288830613", "time": 1629426730589, "type": "text",
    "sender": {"id": "855727961", "name": "Ryan West"},
    "content": {"text": "first line\nsecond line"},
    "thread_information": {"chat_id": "CT_1207124526552602256_60002085329-T-1291567019566818579",
                           "thread_message_id": "1629426730589_40288830613", "title": "T",
                           "message_count": 3, "follower_count": 2, "is_follower": True},
    "mentions": [], "is_pinned": False,
}

MAIN_MESSAGE = {
    "id": "1727333520582%2047588994306224", "time": "2024-09-26T12:22:00.582+05:30",
    "type": "text", "sender": {"id": "855727961", "name": "Ryan West"},
    "content": {"text": "Let's plan the email campaign"},
    "thread_information": {"chat_id": "CT_1_2-T-3", "title": "x"},
    "thread_state_information": {"thread_state": "closed"},
}

FILE_MESSAGE = {
    "id": "1629426730590_40288830614", "time": "1629426730590", "type": "file",
    "sender": {"id": "855727962", "name": "Scott Fisher"},
    "content": {"file": {"name": "plan.pdf", "type": "application/pdf"}, "comment": "the plan"},
}


def dump(o, pretty=False):
    return json.dumps(o, indent=1 if pretty else None, ensure_ascii=False)


def seeds():
    s = {}
    # ---- channels -----------------------------------------------------------
    ch2 = dict(CHANNEL, channel_id="T4000000040005", chat_id="CT_2_3",
               unique_name="", name="#Only-Name", participant_count="7")
    ch_num = dict(CHANNEL, channel_id=12345, chat_id=67890)
    del ch_num["last_message_info"]
    s["fuzz_channel"] = {
        "seed-channel": dump(CHANNEL, True),
        "seed-channel-name-only": dump(ch2),
        "seed-channel-numeric-ids": dump(ch_num),
        "seed-list-channels": dump({"channels": [CHANNEL, ch2], "has_more": True,
                                    "next_token": "abc", "sync_token": "def"}),
        "seed-list-data": dump({"data": [CHANNEL]}),
        "seed-list-bad-item": dump({"channels": [CHANNEL, {"channel_id": "x"}]}),
        "seed-wrong-types": dump({"channel_id": [], "chat_id": {}, "unique_name": 3,
                                  "name": None, "last_message_info": "x"}),
        "seed-iso-time": dump(dict(CHANNEL, last_message_info={"time": "2024-09-26T12:22:00+05:30"})),
        "seed-empty-list": '{"channels":[]}',
    }
    # ---- threads ------------------------------------------------------------
    t_top = dict(THREAD_ENTRY, thread_state="open")
    del t_top["thread_state_info"]
    t_noparent = {"chat_id": "CT_9_8-T-77", "thread_message_id": 1727333520582,
                  "title": "a/b/../..", "is_follower": "true", "follower_count": 1.5e3,
                  "last_message_info": {"time": "2026-11-25T18:54:50Z"}, "message_count": "12"}
    s["fuzz_thread"] = {
        "seed-thread-details": THREAD_DETAILS,
        "seed-thread-entry": dump(THREAD_ENTRY),
        "seed-thread-state-top": dump(t_top),
        "seed-thread-no-parent": dump(t_noparent),
        "seed-thread-state-information": dump({"chat_id": "CT_1_2-T-3",
                                               "thread_state_information": {"thread_state": "CLOSED"}}),
        "seed-list-threads": dump({"url": "/api/v2/threads", "type": "chat_thread",
                                   "next_token": "n1", "sync_token": "s1",
                                   "data": [THREAD_ENTRY, t_top, t_noparent]}),
        "seed-list-threads-key": dump({"threads": [t_noparent]}),
        "seed-wrong-types": dump({"data": [{"chat_id": None}, 5, "x"]}),
        "seed-title-control": dump(dict(t_top, title="\u0001\u007f\u0085 ..\t/ \u2215")),
    }
    # ---- messages -----------------------------------------------------------
    dup = dict(MESSAGE, id="1629426730589 40288830613")
    s["fuzz_message"] = {
        "seed-message": dump(MESSAGE, True),
        "seed-main-message": dump(MAIN_MESSAGE),
        "seed-main-message-data": dump({"data": MAIN_MESSAGE}),
        "seed-file-message": dump(FILE_MESSAGE),
        "seed-list": dump({"data": [FILE_MESSAGE, MESSAGE, dup, MAIN_MESSAGE]}),
        "seed-bare-array": dump([MESSAGE, FILE_MESSAGE]),
        "seed-posted": '{"message_id":"1727333520582%2047588994306224"}',
        "seed-posted-data": '{"data":{"message_id":1727333520582}}',
        "seed-other-types": dump({"data": [
            {"id": "1_2", "time": 1, "type": "image", "content": {"name": "cat.png"}},
            {"id": 3, "time": "1970-01-01T00:00:00.001Z", "type": "", "text": "legacy",
             "sender_id": 9, "sender_name": "Bot"},
            {"id": "4+5", "time": 2, "type": "poll", "content": "question?"}]}),
        "seed-bad-time": dump({"data": [dict(MESSAGE, time="yesterday")]}),
    }
    # ---- users --------------------------------------------------------------
    s["fuzz_user"] = {
        "seed-followers": FOLLOWERS,
        "seed-nonfollowers": NONFOLLOWERS,
        "seed-members": MEMBERS,
        "seed-user": '{"user_id":"855727961","email_id":"ryan.west@zylker.com","name":"Ryan West"}',
        "seed-user-id-email": '{"id":855727961,"email":"r@z.com"}',
        "seed-users-key": '{"users":[{"user_id":"1"}],"data":[{"user_id":"2"}]}',
        "seed-bad-user": '{"members":[{"email_id":"x"},{"user_id":""}]}',
    }
    # ---- error bodies -------------------------------------------------------
    s["fuzz_error_body"] = {"seed-%02d" % i: b for i, b in enumerate(DOC_ERRORS)}
    # ---- time ---------------------------------------------------------------
    times = ["1727333520582", '"1727333520582"', "1727333520582.0",
             '"2024-09-26T06:52:00.582Z"', '"2024-09-26T12:22:00.582+05:30"',
             '"2024-09-26T12:22:00.582+0530"', '"2024-09-26T06:52:00,582123456Z"',
             '"2026-11-25 18:54:50z"', '"2026-11-25T18:54Z"', '"2000-02-29T00:00:00.5-03"',
             '"1972-06-30T23:59:60Z"', '"9999-12-31T23:59:59.999Z"', '"0000-01-01T00:00:00+23:59"',
             "0", "253402300799999", "253402300800000", '"2023-02-29T00:00:00Z"', "-1", "1e300",
             "2024-09-26T06:52:00Z"]
    s["fuzz_time"] = {"seed-%02d" % i: t for i, t in enumerate(times)}
    # ---- message ids ----------------------------------------------------------
    ids = ["1727333520582%2047588994306224", "1727333520582 47588994306224",
           "1727333520582_47588994306224", "1727333520582+47588994306224",
           "%2%20%%200", "%20%20%20", "a%2", "%"]
    s["fuzz_message_id"] = {"seed-%02d" % i: v for i, v in enumerate(ids)}
    # ---- write parsers ----------------------------------------------------------
    s["fuzz_wr_state"] = {"seed-%02d" % i: v for i, v in enumerate([
        "close\n", "reopen", "  closed \t\n", "open", "", "\n", "clo", "close now",
        "CLOSE", "close\x00", "\u00a0close", "reopen\r\n", "opened"])}
    s["fuzz_wr_followers"] = {"seed-%02d" % i: v for i, v in enumerate([
        "855727961\n", "ryan.west@zylker.com\tRyan West\n",
        "-855727962\n", "- 855727962\n", "-\n", "  \n\n",
        "855727961\tryan.west@zylker.com\tRyan West\n855727962\tscott@z.com\tScott\n-3",
        "\r\n", "--x"])}
    s["fuzz_wr_ctl"] = {"seed-%02d" % i: v for i, v in enumerate([
        "follow\n", "unfollow\n", "mute\nunmute\n", "leave\n", "close\nreopen\n",
        "  follow  \n", "unfo", "fol ", "followme\n", "\n\n", "mute\nbogus\n", "FOLLOW\n"])}
    s["fuzz_wr_message"] = {"seed-%02d" % i: v for i, v in enumerate([
        "hello\n", "h\u00e9llo \u2215 \U0001f600\n", b"\xe2\x82", b"caf\xc3",
        b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98", b"a\x00b",
        "\n\n", "\uffff", b"\xe0\x80\xaf", "\u00e9" * 40])}
    # names: byte 0 is max_bytes, then CHAT_ID \x1f TITLE.
    def title(max_bytes, chat_id, t):
        return bytes([max_bytes]) + chat_id.encode() + b"\x1f" + (t if isinstance(t, bytes) else t.encode())
    cid = "CT_1207124526552602256_60002085329-T-1291567019566818579"
    s["fuzz_names_title"] = {"seed-%02d" % i: v for i, v in enumerate([
        title(255, cid, "Email campaign strategy discussion"),
        title(255, "CT_1_2-T-3", "a/b"), title(255, "CT_1_2-T-3", ".."),
        title(255, "CT_1_2-T-3", "."), title(255, "CT_1_2-T-3", ""),
        title(5, "CT_1_2-T-3", "\u00e9\u00e9\u00e9"),
        title(255, "CT_1_2-T-3", "\x01\x7f\u0085\u009f ok"),
        title(16, "CT_1_2-T-3", "/" * 20),
        title(255, "T4000000040005", b"\xc3"), title(0, "x", ""),
        title(255, "CT_1_2-T-3", "a" * 300),
        bytes([255]) + "no separator: the whole rest is a title".encode()])}
    # names_assign: NUL-separated records, "ID\x1fTITLE" or "\x1eRESERVED".
    def channel(*records):
        return "\x00".join(records)
    s["fuzz_names_assign"] = {"seed-%02d" % i: v for i, v in enumerate([
        channel("CT_1_2-T-1291567019566818579\x1fRelease plan",
                "CT_1_2-T-1291567019566818580\x1fRelease plan", "\x1einfo", "\x1emessages"),
        channel("CT_1_2-T-100\x1finfo", "CT_1_2-T-200\x1fmessages", "\x1einfo", "\x1emessages"),
        channel("CT_1_2-T-1\x1f", "CT_1_3-T-1\x1f", "CT_1_4-T-1\x1f.."),
        channel("a-123456\x1fx", "b-123456\x1fx", "c-9123456\x1fx (123456)"),
        channel("CT_1_2-T-5\x1f" + "t" * 300, "CT_1_2-T-6\x1f" + "t" * 301),
        channel("O5797000000001\x1fgeneral", "O5797000000002\x1fgeneral", "\x1e.cliqfs"),
        channel("CT_1_2-T-7\x1fdraft", "\x1edraft"),
        channel("CT_1_2-T-8\x1fa/b", "CT_1_2-T-9\x1fa\u2215b")])}
    return s


def main():
    for harness, files in seeds().items():
        d = os.path.join(ROOT, harness)
        os.makedirs(d, exist_ok=True)
        for name, content in files.items():
            data = content if isinstance(content, bytes) else content.encode("utf-8")
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
