/* The built-in demo organization ("Zylker"): built as --org JSON from the
 * script below so that it goes through the same loader as --org files.
 *
 * Script lines:
 *   "#unique|Name|description"   a new channel ("#!unique|…" = not joined)
 *   "@x|text"                    a channel message by user x (a letter)
 *   "T|open|title" / "T|closed|title"  a thread grown from the last channel message
 *   "x|text"                     a reply in the current thread by user x
 *   "Fx|name|mime|bytes"         a file message by user x (thread, or channel
 *                                when no thread is open)
 *   "+N"                         N ordinary replies from a pool (long threads)
 * "\n" inside a text makes a multi-line message.  User 'a' is "me". */
#include "emulator.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
  const char *id, *email, *name;
} demo_users[] = {
  {"855727961", "ryan.west@zylker.com", "Ryan West"},          /* a (me) */
  {"855727962", "scott.fisher@zylker.com", "Scott Fisher"},    /* b */
  {"855727963", "tim.harrison@zylker.com", "Tim Harrison"},    /* c */
  {"855727964", "priya.raman@zylker.com", "Priya Raman"},      /* d */
  {"431930546", "olivia.palmer@zylker.com", "Olivia Palmer"},  /* e */
  {"855727966", "marcus.chen@zylker.com", "Marcus Chen"},      /* f */
  {"855727967", "sofia.alvarez@zylker.com", "Sofia Alvarez"},  /* g */
  {"855727968", "daniel.okoye@zylker.com", "Daniel Okoye"},    /* h */
  {"855727969", "hannah.becker@zylker.com", "Hannah Becker"},  /* i */
  {"855727970", "arjun.mehta@zylker.com", "Arjun Mehta"},      /* j */
  {"855727971", "lucy.tran@zylker.com", "Lucy Tran"},          /* k */
};
#define NUSERS (sizeof demo_users / sizeof demo_users[0])

static const char *const filler[] = {
  "Makes sense.",
  "I'll check and get back to you by end of day.",
  "+1",
  "Can you share the link again? I can't find it in my inbox.",
  "Updated the tracker.",
  "Let's not block on this; we can revisit next week.",
  "I had the same question, thanks for asking.",
  "Quick note: I'm out Friday, Daniel covers for me.",
  "Tested on staging, works as expected.",
  "Agreed with the above.",
  "Adding a few numbers from last quarter for context:\nQ2: 41%\nQ3: 47%",
  "Who's taking the action item?",
  "I can take it.",
  "Sounds good 👍",
  "Let me loop in finance on this.",
  "Pinging again in case this got buried.",
  "Done.",
  "Not sure that's right, the doc says otherwise. Double-checking.",
  "Confirmed, we're fine.",
  "Thanks everyone!",
};
#define NFILLER (sizeof filler / sizeof filler[0])

static const char *const script[] = {
  "#general|#General|Company-wide announcements and everyday chatter",
  "@b|Reminder: the office will be closed on Thursday for maintenance of the HVAC system. Remote day for everyone!",
  "T|open|Office closure on Thursday",
  "c|Does that include the warehouse team?",
  "b|Warehouse stays open, only the main building is affected.",
  "k|Can we still pick up parcels from reception?",
  "b|Reception will be staffed until noon.",
  "a|Thanks Scott. I'll move the client visit to Friday then.",
  "@e|We're putting together the holiday party plan. Ideas welcome!",
  "T|open|Holiday party 2026",
  "e|Options so far:\n1. Bowling + dinner\n2. Cooking class\n3. Escape room",
  "g|Cooking class gets my vote 🍝",
  "h|Escape room! Last year's bowling was fun but let's try something new.",
  "i|Cooking class please, and vegetarian options would be great.",
  "j|+1 for cooking class",
  "e|Cooking class is leading. I'll get quotes for Dec 18 and Dec 19.",
  "c|Dec 19 works better for the ops team.",
  "e|Booked for Dec 19, 6pm. Details in the calendar invite.",
  "@d|New parking policy starts next month. Please register your plate number.",
  "T|closed|Parking registration",
  "d|The form is on the intranet under Facilities → Parking.",
  "f|Do motorbikes need to register too?",
  "d|Yes, every vehicle.",
  "k|Registered, thanks!",
  "d|Registration is closed now, thanks all. Late requests go to facilities@zylker.com.",
  "@i|Welcome Lucy Tran, who joins the support team this week! 🎉",
  "T|open|Welcome Lucy!",
  "k|Thank you all! Happy to be here.",
  "b|Welcome Lucy!",
  "g|Welcome aboard 🎉",
  "a|Welcome! Ping me if you need access to anything.",
  "h|Welcome Lucy, lunch on Wednesday?",
  "k|Lunch sounds great 😊",
  "@a|Kicking off the Q1 planning cycle. Each team please add their top 3 goals to the planning doc by Friday.",
  "T|open|Q1 planning",
  "a|Template is in the shared drive: Planning/Q1-2027.",
  "F a|Q1-2027-planning-template.xlsx|application/vnd.openxmlformats-officedocument.spreadsheetml.sheet|48213",
  "f|Engineering draft is in. We kept it to three goals as asked.",
  "e|Marketing's draft is in too.",
  "d|Support will add ours tomorrow.",
  "+12",
  "a|Thanks all. I'll consolidate and share the summary Monday.",
  "@c|Weekly sync notes will be posted here from now on.",
  "T|open|Weekly sync",
  "c|Notes for week 46:\n- hiring: 2 offers out\n- office move: on track\n- budget review next Tuesday",
  "b|Thanks Tim.",
  "a|Can we add the vendor review to next week's agenda?",
  "c|Added.",
  "f|Engineering update: CI migration starts Monday.",
  "@c|Second weekly sync thread for the ops side, since the first one got long.",
  "T|open|Weekly sync",
  "c|Ops notes week 47:\n- forklift inspection done\n- new shift schedule from Dec 1",
  "h|Shift schedule looks good.",
  "j|Can we swap the Tuesday late shift? I have a training that day.",
  "c|Sure, swap with Daniel if he agrees.",
  "h|Fine with me.",

  "@h|The coffee machine on the 3rd floor is broken again ☕",
  "T|open|Coffee machine on 3rd floor",
  "c|Facilities ticket opened: FAC-812.",
  "g|The one on the 2nd floor works, for the desperate.",
  "h|Technician comes tomorrow morning.",
  "k|Can we get a second machine? There's always a queue at 9.",
  "c|Asked facilities, they'll look at the budget.",
  "#engineering|#Engineering|Builds, releases, incidents and architecture",
  "@f|Proposal: move our CI/CD from Jenkins to GitHub Actions. Draft in the wiki.",
  "T|open|CI/CD pipeline migration",
  "f|Main reasons: less maintenance, faster runners, config lives with the code.",
  "a|What about the release jobs that need the signing keys?",
  "f|We'd use environment secrets with required reviewers.",
  "j|Build times on the draft branch: 14 min → 6 min.",
  "h|Nice. Are caches per branch?",
  "j|Per branch with fallback to main.",
  "f|Plan:\n1. mirror pipelines (2 weeks)\n2. compare results\n3. switch off Jenkins",
  "+15",
  "a|Approved. Let's start with the backend repos.",
  "f|Starting Monday.",
  "@j|Release 4.12 is scheduled for Tuesday. Freeze starts Friday 6pm.",
  "T|closed|Release 4.12",
  "j|Release notes draft is in the wiki.",
  "h|Two bug fixes still in review, should land today.",
  "j|Both merged, thanks.",
  "f|Staging deploy green.",
  "j|4.12 is out. Thanks everyone, closing this thread.",
  "@h|Incident: elevated API latency in eu-west since 09:40 UTC. Investigating.",
  "T|closed|Incident 2026-11-18: API latency eu-west",
  "h|p99 at 2.3 s, normal is 300 ms.",
  "j|Looks like the connection pool on db-3 is saturated.",
  "h|Restarted the pool, latency back to normal at 10:25.",
  "f|Root cause: a report query without an index, running every minute.",
  "h|Postmortem:\n- impact: 45 min of slow API in eu-west\n- cause: missing index on reports.created_at\n- fix: index added, query cached",
  "F h|postmortem-2026-11-18.pdf|application/pdf|182044",
  "a|Thanks for the quick fix and the write-up.",
  "@a|Let's discuss the database upgrade from Postgres 14 to 16.",
  "T|open|Postgres 16 upgrade",
  "j|We need to test the logical replication setup first.",
  "f|Extensions check: all supported on 16.",
  "h|I can do a dry run on the staging replica next week.",
  "a|Great, please share the runbook before.",
  "+8",
  "@i|Can someone review my PR for the invoice PDF layout? Small change.",
  "T|open|Review: invoice PDF layout",
  "f|Looking now.",
  "f|Left two comments, otherwise LGTM.",
  "i|Fixed, thanks!",
  "f|Approved.",
  "i|Merged 🚀",
  "@f|Reminder: on-call rotation for December is up. Please check your slots.",
  "T|open|On-call rotation December",
  "j|I can't do Dec 24–26, can someone swap?",
  "h|I'll take Dec 24–26 if you take Dec 31–Jan 2.",
  "j|Deal, thanks Daniel!",
  "f|Updated the schedule.",
  "a|Thanks. Remember to update PagerDuty overrides as well.",
  "@j|API rate limiting for the public endpoints: proposal in the doc.",
  "T|open|Rate limiting / quotas for public API",
  "j|Tiered limits: free 60/min, pro 600/min, enterprise custom.",
  "a|How do we communicate limits to clients? Headers?",
  "j|Standard RateLimit headers plus Retry-After on 429.",
  "h|Let's also log throttled requests per key so support can see them.",
  "j|Added to the proposal.",
  "@h|Flaky test in the payments suite keeps failing on main.",
  "T|closed|Flaky test: payments timeout",
  "h|`test_refund_timeout` fails about 1 in 20 runs.",
  "j|It sleeps 2 s and expects the worker to be done. Should poll instead.",
  "h|Fixed to poll with a deadline. 200 runs green.",
  "f|Nice, thanks.",
  "h|Closing.",

  "@j|Node 22 upgrade for the backend services: tracking issues here.",
  "T|open|Dependency upgrades: Node 22",
  "j|Services done: auth, billing. Remaining: reports, notifications.",
  "h|Reports has a native module that needs a rebuild.",
  "j|Rebuilt, tests green.",
  "f|Notifications blocked on the old SDK, upgrading that first.",
  "f|SDK upgraded, notifications on Node 22 now.",
  "j|All services on Node 22 🎉",
  "@f|Our logging bill doubled this quarter. Let's look at retention.",
  "T|open|Logging costs / retention",
  "f|Debug logs are kept 90 days. Nobody reads them after a week.",
  "h|Proposal: debug 7 days, info 30 days, audit 1 year.",
  "a|Check with legal about the audit logs first.",
  "f|Legal is fine with 1 year for audit.",
  "h|Retention updated. Expect the bill to drop next month.",
  "@j|Load test results for 4.13 will be posted here.",
  "T|open|Load test results for 4.13",
  "j|Baseline: 1,200 req/s at p99 180 ms.",
  "h|With the new cache layer: 2,050 req/s at p99 140 ms.",
  "+30",
  "j|Summary:\n- throughput +70%\n- p99 −22%\n- no errors up to 2,500 req/s",
  "a|Excellent. Ship it.",
  "#zylker-support|#Zylker-Support|Customer escalations and support process",
  "@k|Customer Northwind reports they can't export invoices to CSV since this morning.",
  "T|open|Northwind: CSV export failing",
  "k|Error message: \"Export failed, please try again later\".",
  "i|Checking the export service logs.",
  "i|Found it: a malformed date in one invoice breaks the export.",
  "k|Can we fix just their data for now?",
  "i|Yes, patched the invoice. Export works again.",
  "k|Confirmed with the customer, they're happy. 🙏",
  "i|Bug filed for the proper fix: SUP-2291.",
  "@b|Our first-response time went up to 5h last week. Let's look at the queue.",
  "T|open|First-response time trending up",
  "b|Numbers:\nWeek 45: 2h10\nWeek 46: 3h40\nWeek 47: 5h05",
  "k|Many tickets arrived Sunday night, and we have no weekend coverage.",
  "d|Could we add a Sunday evening shift on rotation?",
  "b|Let's try it for December and measure.",
  "+20",
  "b|Rotation is in the calendar. Let's review in January.",
  "@d|New macro for refund requests is live in the helpdesk.",
  "T|closed|Refund macro",
  "d|It fills in the order number and the refund policy link.",
  "k|Used it on three tickets already, saves a lot of typing.",
  "k|Could it also add the return label link?",
  "d|Added the label link, thanks for the idea.",
  "d|Great. Closing this, feedback in the support-process doc please.",
  "@k|Contoso asks whether we support SSO with Okta.",
  "T|open|Contoso: SSO with Okta",
  "a|Yes, SAML 2.0. Send them the setup guide.",
  "k|Sent. They ask if SCIM provisioning is supported too.",
  "f|SCIM is on the roadmap for Q1, not available yet.",
  "k|Told them, they're fine with manual provisioning for now.",
  "a|Let's add SCIM interest to the roadmap notes, Contoso is the third customer asking.",
  "@i|Draft of the updated escalation matrix for review.",
  "T|open|Escalation matrix v2",
  "F i|escalation-matrix-v2.docx|application/vnd.openxmlformats-officedocument.wordprocessingml.document|30551",
  "b|Looks good. Can we add the on-call engineer for P1s?",
  "i|Added.",
  "d|Approved from my side.",
  "k|Published on the wiki and linked from the helpdesk sidebar.",
  "@k|Weekly sync for the support team moves to Wednesdays.",
  "T|open|Weekly sync",
  "k|Starting next week, Wednesdays 10:00.",
  "d|Works for me.",
  "i|👍",
  "b|Added to the team calendar.",
  "k|Thanks!",

  "@i|The help center has 23 articles flagged as outdated.",
  "T|open|Help center article backlog",
  "i|I sorted them by page views; the top 5 cover 60% of traffic.",
  "k|I'll take the invoicing ones.",
  "d|I'll do the SSO and user management ones.",
  "i|Great, let's aim for the top 5 by Friday.",
  "k|Invoicing articles updated.",
  "@b|Tier 2 escalations in November: let's review the trend.",
  "T|open|Tier 2 escalations in November",
  "b|41 escalations, up from 28 in October.",
  "i|Half of them are the CSV export bug.",
  "d|The fix for SUP-2291 ships in 4.13.",
  "b|Then December should look better.",
  "k|I'll tag the related tickets so we can confirm.",
  "b|Thanks. Let's revisit after the release.",
  "i|👍",
  "#marketing|#Marketing|Campaigns, content and events",
  "@e|Let's plan the email campaign for the winter release.",
  "T|open|Email campaign strategy discussion",
  "e|Goals: announce 4.12 features, drive upgrades to Pro.",
  "g|Segment by plan: free users get the upgrade pitch, Pro users get the feature tour.",
  "e|Good idea. Send dates: Dec 2 and Dec 9.",
  "a|Please make sure the screenshots match the new UI.",
  "g|Will do. Drafts by Thursday.",
  "e|Subject line options:\n- \"Winter release: what's new in Zylker\"\n- \"5 things you can do now in Zylker\"",
  "g|I like the second one.",
  "+25",
  "e|Final drafts approved. Scheduling now.",
  "@g|Blog post about the customer story with Northwind is ready for review.",
  "T|open|Blog: Northwind customer story",
  "e|Reading now.",
  "e|Great story. Can we get a quote from their CFO?",
  "g|Asked them, waiting for approval.",
  "g|Quote approved. Publishing Monday.",
  "a|Nice piece. Share it in the newsletter too.",
  "@e|Trade show booth for Zylker Connect 2027: we need to decide on the layout.",
  "T|closed|Zylker Connect 2027 booth",
  "e|Vendor options: Expo One or BoothCraft.",
  "g|BoothCraft was great last year.",
  "a|Go with BoothCraft, stay within the 20k budget.",
  "g|Booth design files are due January 15.",
  "e|Contract signed. Closing the thread; logistics in the events doc.",
  "@g|Website homepage A/B test results are in.",
  "T|open|Homepage A/B test: hero text",
  "g|Variant B (\"Run your business, not your tools\") had 12% higher sign-up rate.",
  "e|Significant?",
  "g|p < 0.01 over 41k visitors.",
  "e|Ship variant B.",
  "g|Variant B is live for everyone now.",
  "@e|Social media calendar for December is in the shared drive.",
  "T|open|Social calendar December",
  "g|Added the holiday posts.",
  "e|Thanks! Let's keep one post per weekday.",
  "k|Could we feature a support tip once a week?",
  "e|Love it. Tuesdays?",
  "k|Tuesdays it is.",

  "@e|Webinar on automation best practices, Jan 21. Speakers and agenda TBD.",
  "T|open|Webinar: automation best practices",
  "e|Looking for two speakers from product.",
  "a|Arjun and Priya would be great.",
  "j|Happy to do a 20-minute demo.",
  "d|I can cover the support angle.",
  "e|Agenda draft:\n1. Intro (5 min)\n2. Demo (20 min)\n3. Support tips (15 min)\n4. Q&A (20 min)",
  "g|I'll prepare the landing page.",
  "#design|#Design|UI, UX and brand",
  "@g|New icon set for the mobile app, first draft.",
  "T|open|Mobile icon set v1",
  "g|Key changes: rounded corners, 2px stroke, consistent 24px grid.",
  "f|The settings icon is hard to tell apart from the filter icon.",
  "g|Good catch, I'll rework it.",
  "a|Overall looks much cleaner.",
  "g|v1.1 attached in Figma.",
  "@a|Accessibility audit: contrast issues on the dashboard.",
  "T|open|Dashboard contrast / accessibility fixes",
  "a|Grey text on white is 3.1:1, needs 4.5:1.",
  "g|I'll darken the secondary text colour.",
  "f|Chart labels too?",
  "g|Yes, updated palette covers charts.",
  "a|Ship it in 4.13.",
  "@g|Brand guidelines v3 are final.",
  "T|closed|Brand guidelines v3",
  "e|Thanks! Rolling them out to marketing.",
  "g|PDF is in the brand folder.",
  "i|Does the new logo spacing apply to email signatures too?",
  "g|Yes, updated signature templates are in the same folder.",
  "a|Great work, closing.",
  "@f|Onboarding flow redesign: let's collect pain points.",
  "T|open|Onboarding flow redesign",
  "f|From support tickets: users miss the \"invite team\" step.",
  "k|Also confusion about the trial length.",
  "g|I'll sketch a checklist-style onboarding.",
  "f|Prototype review Thursday?",
  "g|Thursday works.",
  "+6",

  "@g|Dark mode colour tokens: first proposal in Figma.",
  "T|open|Dark mode colour tokens",
  "g|Background #121417, surface #1B1E22, primary stays brand blue.",
  "f|Will the charts work on the dark surface?",
  "g|Chart palette gets a dark variant, same hue, higher lightness.",
  "a|Let's test with a few customers before committing.",
  "g|Beta flag added for 10 accounts.",
  "@f|We need an icon for 'Export' in the toolbar.",
  "T|open|Icon for 'Export'",
  "g|Arrow out of a box, or a download tray?",
  "f|Arrow out of a box, download is for saving files.",
  "a|Agreed.",
  "g|Added to the icon set.",
  "f|Looks great, thanks!",
  "#!sales-emea|#Sales-EMEA|EMEA pipeline (not joined)",
  "@c|Q4 pipeline review on Monday.",
  "T|open|Q4 pipeline review",
  "c|Please update your opportunities in the CRM before Monday.",
  "d|Done for DACH.",
  "c|Thanks.",
  "j|Benelux numbers updated.",
  "c|Thanks both, see you Monday.",
  NULL,
};

static int user_index(char letter)
{
  int u = letter - 'a';
  return u >= 0 && (size_t)u < NUSERS ? u : 0;
}

static json_t *demo_message(int64_t t, int sender, const char *text)
{
  return json_pack("{s:I,s:s,s:s,s:s}", "time", (json_int_t)t, "sender",
                   demo_users[sender].id, "type", "text", "text", text);
}

static json_t *demo_file(int64_t t, int sender, const char *spec)
{
  char name[200] = "", mime[160] = "";
  long long size = 0;
  sscanf(spec, "%199[^|]|%159[^|]|%lld", name, mime, &size);
  return json_pack("{s:I,s:s,s:s,s:{s:s,s:s,s:I}}", "time", (json_int_t)t,
                   "sender", demo_users[sender].id, "type", "file", "file",
                   "name", name, "type", mime, "size", (json_int_t)size);
}

json_t *emu_demo_json(void)
{
  json_t *users = json_array();
  for (size_t u = 0; u < NUSERS; u++)
    json_array_append_new(users, json_pack("{s:s,s:s,s:s}", "user_id",
                                           demo_users[u].id, "email_id",
                                           demo_users[u].email, "name",
                                           demo_users[u].name));
  json_t *channels = json_array();
  json_t *ch = NULL, *chmsgs = NULL, *threads = NULL, *th = NULL;
  json_t *last_parent = NULL;
  const int64_t anchor = 1794816000000LL; /* 2026-11-16T08:00:00Z */
  int64_t ch_clock = anchor, th_clock = anchor;
  int nchannel = 0, nthread = 0;
  uint64_t rng = 42;
  for (size_t i = 0; script[i]; i++) {
    const char *line = script[i];
    if (line[0] == '#') {
      bool joined = line[1] != '!';
      char uname[64], name[64], desc[160];
      sscanf(line + (joined ? 1 : 2), "%63[^|]|%63[^|]|%159[^\n]", uname, name,
             desc);
      nchannel++;
      chmsgs = json_array();
      threads = json_array();
      th = NULL;
      char cid[32], chat[64];
      snprintf(cid, sizeof cid, "O57970000000%02d", nchannel);
      snprintf(chat, sizeof chat, "CT_12071245265526022%02d_600020853%02d",
               nchannel, nchannel);
      ch = json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:o,s:o}", "channel_id", cid,
                     "chat_id", chat, "unique_name", uname, "name", name,
                     "description", desc, "joined", joined, "messages",
                     chmsgs, "threads", threads);
      json_array_append_new(channels, ch);
      ch_clock = anchor + (int64_t)nchannel * 1800000LL;
    } else if (line[0] == '@') {
      ch_clock += 3 * 3600000LL + 17 * 60000LL;
      last_parent = demo_message(ch_clock, user_index(line[1]), line + 3);
      json_array_append_new(chmsgs, last_parent);
      th = NULL;
    } else if (line[0] == 'T') {
      char state[16], title[200];
      sscanf(line + 2, "%15[^|]|%199[^\n]", state, title);
      nthread++;
      char tchat[96];
      snprintf(tchat, sizeof tchat, "%s-T-12915670195668%05d",
               json_string_value(json_object_get(ch, "chat_id")), nthread);
      /* Give the parent a stable id so that tests can name it. */
      char mid[64];
      snprintf(mid, sizeof mid, "%" PRId64 "_4758899430%04d",
               (int64_t)json_integer_value(json_object_get(last_parent, "time")),
               nthread);
      json_object_set_new(last_parent, "id", json_string(mid));
      th = json_pack("{s:s,s:s,s:s,s:s,s:[]}", "chat_id", tchat,
                     "thread_message_id", mid, "title", title, "state", state,
                     "messages");
      json_array_append_new(threads, th);
      th_clock = json_integer_value(json_object_get(last_parent, "time")) + 120000;
    } else if (line[0] == '+') {
      int n = atoi(line + 1);
      for (int k = 0; k < n && th; k++) {
        th_clock += (int64_t)(2 + emu_splitmix(&rng) % 9) * 60000LL;
        int sender = 1 + (int)(emu_splitmix(&rng) % (NUSERS - 1));
        json_array_append_new(
            json_object_get(th, "messages"),
            demo_message(th_clock, sender, filler[emu_splitmix(&rng) % NFILLER]));
      }
    } else if (line[0] == 'F') {
      int sender = user_index(line[2]);
      if (th) {
        th_clock += 4 * 60000LL;
        json_array_append_new(json_object_get(th, "messages"),
                              demo_file(th_clock, sender, line + 4));
      } else {
        ch_clock += 5 * 60000LL;
        json_array_append_new(chmsgs, demo_file(ch_clock, sender, line + 4));
      }
    } else if (line[1] == '|' && th) {
      th_clock += (int64_t)(1 + emu_splitmix(&rng) % 11) * 60000LL;
      json_array_append_new(json_object_get(th, "messages"),
                            demo_message(th_clock, user_index(line[0]), line + 2));
    }
  }
  return json_pack("{s:s,s:o,s:o}", "me", demo_users[0].id, "users", users,
                   "channels", channels);
}

struct emu_org *emu_org_demo(uint64_t seed)
{
  json_t *root = emu_demo_json();
  char err[256];
  struct emu_org *org = emu_org_from_json(root, seed, err, sizeof err);
  json_decref(root);
  if (!org)
    fprintf(stderr, "cliq-emulator: demo organization: %s\n", err);
  return org;
}
