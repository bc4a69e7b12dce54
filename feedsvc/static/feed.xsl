<?xml version="1.0" encoding="UTF-8"?>
<!--
  Shown by a web browser that opens one of our RSS or Atom feeds (the feeds reference this file in an
  xml-stylesheet processing instruction): a readable page in Hindi that says what a feed is and how to
  subscribe, with the feed's newest items. Feed readers ignore it and read the feed itself.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:variable name="home" select="/rss/channel/link | /atom:feed/atom:link[@rel='alternate']/@href"/>
  <xsl:variable name="self" select="/rss/channel/atom:link[@rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href"/>
  <xsl:variable name="format">
    <xsl:choose>
      <xsl:when test="/rss">RSS</xsl:when>
      <xsl:otherwise>Atom</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <xsl:template match="/">
    <html lang="hi">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="robots" content="noindex"/>
        <title><xsl:value-of select="$title"/> — फ़ीड (<xsl:value-of select="$format"/> feed)</title>
        <style>
          body { margin: 0; font-family: "Noto Sans Devanagari", "Noto Sans", "Mukta", "Hind", "Nirmala UI",
                 "Mangal", "Kohinoor Devanagari", "Lohit Devanagari", system-ui, sans-serif;
                 color: #1b1b1f; line-height: 1.7; font-size: 1.0625rem; }
          main { max-width: 46rem; margin: 0 auto; padding: 1rem; }
          .about { background: #fff6d8; border: 1px solid #f0dc9a; border-radius: .5rem; padding: .75rem 1rem; }
          .en { color: #5b5d66; font-size: .9em; }
          code { word-break: break-all; background: #f3f3f6; padding: .1rem .3rem; }
          ol { padding-left: 1.25rem; }
          .items { list-style: none; padding: 0; }
          .items li { padding: .6rem 0; border-bottom: 1px solid #e3e3e8; }
          .items time { display: block; color: #5b5d66; font-size: .85rem; }
          a { color: #b3261e; }
        </style>
      </head>
      <body>
        <main>
          <section class="about">
            <h1>यह एक फ़ीड है <span class="en">(This is a <xsl:value-of select="$format"/> feed)</span></h1>
            <p>फ़ीड किसी वेबसाइट की नई ख़बरों की सूची है जिसे फ़ीड रीडर (जैसे Feedly, Inoreader, NetNewsWire
              या Thunderbird) अपने-आप पढ़ते हैं। सब्सक्राइब करने पर नई ख़बरें आपके रीडर में आती रहेंगी,
              आपको बार-बार वेबसाइट खोलने की ज़रूरत नहीं।
              <span class="en">A feed lists a site's newest articles for feed readers, which check it for you.</span></p>
            <h2>सब्सक्राइब कैसे करें <span class="en">(How to subscribe)</span></h2>
            <ol>
              <li>इस पेज का पता (URL) कॉपी करें:
                <code><xsl:value-of select="$self"/></code></li>
              <li>अपने फ़ीड रीडर में “Add feed / फ़ीड जोड़ें” चुनें और पता चिपकाएँ।</li>
              <li>बस! नई ख़बरें अपने-आप आपके रीडर में दिखेंगी।</li>
            </ol>
            <p>दूसरे विभागों, विषयों और लेखकों के फ़ीड: <a href="/feeds">सभी फ़ीड <span class="en">(all feeds)</span></a></p>
          </section>
          <h2><a href="{$home}"><xsl:value-of select="$title"/></a></h2>
          <p><xsl:value-of select="/rss/channel/description | /atom:feed/atom:subtitle"/></p>
          <ul class="items">
            <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
          </ul>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <li>
      <a href="{link}"><xsl:value-of select="title"/></a>
      <time><xsl:value-of select="pubDate"/> · <xsl:value-of select="dc:creator"/></time>
      <div><xsl:value-of select="description"/></div>
    </li>
  </xsl:template>

  <xsl:template match="atom:entry">
    <li>
      <a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a>
      <time datetime="{atom:published}"><xsl:value-of select="translate(substring(atom:published, 1, 16), 'T', ' ')"/>
        · <xsl:value-of select="atom:author/atom:name"/></time>
      <div><xsl:value-of select="atom:summary"/></div>
    </li>
  </xsl:template>
</xsl:stylesheet>
